"""Scenario 7, security: every API endpoint and method refuses anonymous callers (401) and
another patient's credentials (403, 404, or for a booking naming the victim the 400 of an
unknown patient; and nothing changes); the admin needs a staff
login; Flower needs its basic auth; a worker that sent messages logs no secret and no full
phone number."""

import base64
import secrets
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tokens import issue_token
from appointments import services
from appointments.models import Appointment, Patient
from notifications.models import Notification
from notifications.outbox import delivery
from tasks.maintenance import sweep_due_notifications
from tests.twilio_standin import TwilioStandIn

from .harness import free_port, report, sms_by_recipient, wait_until

# (method, path template, body): the brief's endpoints, plus the two list endpoints the viewsets expose.
ENDPOINTS = [
    ("POST", "/api/patients/", {"name": "X", "email": "x@example.com", "timezone": "UTC", "channels": ["email"]}),
    ("GET", "/api/patients/{patient}/", None),
    ("PATCH", "/api/patients/{patient}/", {"name": "Renamed", "channels": ["sms"]}),
    (
        "POST",
        "/api/appointments/",
        {"patient": "{patient}", "provider": "Dr. Who", "starts_at": "{future}", "duration_minutes": 30},
    ),
    ("GET", "/api/appointments/{appointment}/", None),
    ("POST", "/api/appointments/{appointment}/reschedule/", {"starts_at": "{future}"}),
    ("POST", "/api/appointments/{appointment}/cancel/", {"reason": "not mine"}),
    ("GET", "/api/appointments/{appointment}/notifications/", None),
    ("GET", "/api/notifications/", None),
    ("POST", "/api/notifications/{failed_row}/retry/", None),
    ("GET", "/api/inbox/", None),
    ("POST", "/api/inbox/{inbox_row}/read/", None),
    ("GET", "/api/patients/", None),
    ("GET", "/api/appointments/", None),
]
IDS = [f"{method} {path}" for method, path, _ in ENDPOINTS]
_tallies = {}


@pytest.fixture
def victim(db, twilio, clinic):
    """Patient A (who can sign in) with an appointment, a sent in-app message and a dead SMS."""
    patient = Patient.objects.create(
        name="Alice Victim", email="alice@example.com", phone="+14155550111", channels=["email", "sms", "in_app"]
    )
    patient.user = get_user_model().objects.create_user(patient.email, patient.email, "alice-pass-123")
    patient.save()
    appointment = services.book(
        patient=patient, provider="Dr. A", starts_at=timezone.now() + timedelta(days=7), duration_minutes=30
    )
    inbox_row = appointment.notifications.get(kind="booking_confirmation", channel="in_app")
    delivery.send_notification(inbox_row.pk)
    failed_row = appointment.notifications.get(kind="booking_confirmation", channel="sms")
    Notification.objects.filter(pk=failed_row.pk).update(status="failed", last_error="dead", next_attempt_at=None)
    return {
        "patient": patient.pk,
        "appointment": appointment.pk,
        "inbox_row": inbox_row.pk,
        "failed_row": failed_row.pk,
        "future": (timezone.now() + timedelta(days=9)).isoformat(),
    }


def fill(value, ids):
    if isinstance(value, str):
        filled = value.format(**ids)
        return int(filled) if value.startswith("{") and filled.isdigit() else filled
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def call(client, method, path, body, ids):
    send = getattr(client, method.lower())
    return send(fill(path, ids), fill(body, ids), format="json") if body else send(fill(path, ids))


def snapshot(ids):
    """What a refused call must leave as it was."""
    appointment = Appointment.objects.get(pk=ids["appointment"])
    return (
        Patient.objects.filter(pk=ids["patient"]).values("name", "channels").get(),
        (appointment.status, appointment.starts_at),
        Notification.objects.get(pk=ids["failed_row"]).status,
        Notification.objects.get(pk=ids["inbox_row"]).read_at,
        Appointment.objects.count(),
        Patient.objects.count(),
    )


def tally(scenario, code):
    counts = _tallies.setdefault(scenario, {"requests": 0, "5xx": 0})
    counts["requests"] += 1
    counts["5xx"] += code >= 500
    return counts


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_anonymous_is_refused(victim, method, path, body):
    before = snapshot(victim)
    response = call(APIClient(), method, path, body, victim)
    counts = tally("7a anonymous refused", response.status_code)
    report(
        "7a anonymous refused",
        rows=1,
        sent=0,
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=int(response.status_code >= 500),
        endpoint=f"{method} {path}",
        status=response.status_code,
        running_total=counts["requests"],
    )
    assert response.status_code == 401
    assert snapshot(victim) == before


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=IDS)
def test_another_patient_is_refused(victim, method, path, body):
    intruder = Patient.objects.create(name="Mallory", email="mallory@example.com", channels=["email", "in_app"])
    intruder.user = get_user_model().objects.create_user(intruder.email, intruder.email, "mallory-pass-123")
    intruder.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(intruder.user)}")
    before = snapshot(victim)
    response = call(client, method, path, body, victim)
    counts = tally("7b other patient refused", response.status_code)
    report(
        "7b other patient refused",
        rows=1,
        sent=0,
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=int(response.status_code >= 500),
        endpoint=f"{method} {path}",
        status=response.status_code,
        running_total=counts["requests"],
    )
    if (method, path) in (("GET", "/api/inbox/"), ("GET", "/api/appointments/")):
        # The caller's own list: allowed, and none of the victim's rows in it.
        assert response.status_code == 200
        ids = {item["id"] for item in response.json()["results"]}
        assert not ids & {victim["inbox_row"], victim["appointment"]}
    elif (method, path) == ("POST", "/api/appointments/"):
        # The victim's id answers what an id that does not exist answers: no enumeration.
        assert response.status_code == 400
        assert list(response.json()) == ["patient"]
    else:
        assert response.status_code in (403, 404)
    assert snapshot(victim) == before


ADMIN_PAGES = [
    "/admin/",
    "/admin/notifications/notification/",
    "/admin/notifications/dashboard/",
    "/admin/appointments/patient/",
    "/admin/appointments/appointment/",
    "/admin/django_celery_beat/periodictask/",
    "/admin/auth/user/",
]


def test_admin_pages_need_a_staff_login(client, django_user_model):
    answers = {}
    for page in ADMIN_PAGES:
        response = client.get(page)
        answers[("anonymous", page)] = response.status_code
        assert response.status_code == 302 and "/admin/login/" in response["Location"], page
    patient_user = django_user_model.objects.create_user("pat@example.com", "pat@example.com", "pat-pass-123")
    client.force_login(patient_user)
    for page in ADMIN_PAGES:
        response = client.get(page)
        answers[("patient", page)] = response.status_code
        assert response.status_code == 302 and "/admin/login/" in response["Location"], page
    staff = django_user_model.objects.create_superuser("boss", "boss@clinic.example", "boss-pass-123")
    client.force_login(staff)
    staff_ok = sum(client.get(page).status_code == 200 for page in ADMIN_PAGES)
    report(
        "7c admin needs staff login",
        rows=len(answers),
        sent=0,
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=sum(1 for code in answers.values() if code >= 500),
        refused=len(answers),
        staff_pages_ok=f"{staff_ok}/{len(ADMIN_PAGES)}",
    )
    assert staff_ok == len(ADMIN_PAGES)


def http_get(url, auth=None, timeout=5):
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_flower_needs_basic_auth(spawn, worker_env):
    port = free_port()
    credentials = f"ops:{secrets.token_urlsafe(12)}"
    env = worker_env(FLOWER_BASIC_AUTH=credentials)
    flower = spawn.start(
        "flower",
        [sys.executable, "-m", "celery", "-A", "config", "flower", f"--port={port}", "--address=127.0.0.1"],
        env,
    )
    base = f"http://127.0.0.1:{port}"

    def up():
        assert flower.running(), flower.tail()
        try:
            return http_get(base + "/healthcheck", timeout=2) == 200
        except OSError:
            return False

    wait_until(up, 60, 0.3, message="Flower listening")
    pages = ["/", "/workers", "/tasks", "/broker", "/api/workers", "/api/tasks"]
    anonymous = {page: http_get(base + page) for page in pages}
    wrong = http_get(base + "/", auth="ops:wrong-password")
    authorised = http_get(base + "/", auth=credentials)
    open_paths = {page: http_get(base + page) for page in ("/metrics", "/healthcheck")}
    report(
        "7d flower basic auth",
        rows=len(pages) + 2,
        sent=0,
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=sum(1 for code in [*anonymous.values(), wrong, authorised] if code >= 500),
        anonymous="/".join(str(c) for c in anonymous.values()),
        wrong_password=wrong,
        with_auth=authorised,
        unauthenticated_by_design="/".join(f"{p}:{c}" for p, c in open_paths.items()),
    )
    assert set(anonymous.values()) == {401}, anonymous
    assert wrong == 401
    assert authorised == 200


@pytest.mark.parametrize("loglevel", ["INFO", "DEBUG"])
def test_worker_logs_hold_no_secret_and_no_full_phone_number(spawn, worker_env, settings, loglevel):
    """A worker sends SMS, WhatsApp and email (some of them fail, one with Twilio's error text
    naming the number) with secrets of its own; its stdout and stderr must name none of them."""
    token = "tok_" + secrets.token_hex(16)
    secret_key = "key_" + secrets.token_hex(24)
    standin = TwilioStandIn(auth_token=token)
    try:
        settings.TWILIO_AUTH_TOKEN = token
        settings.TWILIO_API_BASE_URL = standin.base_url
        env = worker_env(
            TWILIO_AUTH_TOKEN=token,
            TWILIO_API_BASE_URL=standin.base_url,
            DJANGO_SECRET_KEY=secret_key,
            EMAIL_HOST_PASSWORD="smtp_" + secrets.token_hex(8),
            TWILIO_HTTP_TIMEOUT="0.5",
            NOTIFICATIONS_BACKOFF_BASE="0.1",
            NOTIFICATIONS_BACKOFF_MAX="0.2",
            NOTIFICATIONS_UNANSWERED_GRACE="0",
            LOG_LEVEL=loglevel,
            SMS_ALLOWED_COUNTRIES="1,44",  # the +44 number below is texted too
        )
        phones = ["+14155550142", "+442079460958", "+15005550001", "+14155550143", "+14155550144"]
        standin.script("+14155550143", 503)  # a transient failure, retried
        standin.script("+14155550144", ("slow", 1.5))  # a read timeout, then the look-first retry
        standin.script("whatsapp:+14155550142", ("error", 400, 63016, "Failed to send to whatsapp:+14155550142"))
        patients = [
            Patient.objects.create(
                name=f"Log {i}", email=f"log{i}@example.com", phone=phone, channels=["email", "sms", "whatsapp"]
            )
            for i, phone in enumerate(phones)
        ]
        worker = spawn.worker(f"log-worker-{loglevel.lower()}", env, loglevel=loglevel)
        for patient in patients:
            services.book(
                patient=patient, provider="Dr. Log", starts_at=timezone.now() + timedelta(days=7), duration_minutes=30
            )
        rows = Notification.objects.filter(kind="booking_confirmation")
        deadline = time.monotonic() + 40
        while rows.filter(status__in=["pending", "sending"]).exists() or rows.retrying().exists():
            assert time.monotonic() < deadline, "rows did not settle"
            sweep_due_notifications.delay()
            time.sleep(0.5)
        worker.stop(timeout=30)
        sent = sms_by_recipient(standin)
    finally:
        standin.stop()

    output = worker.output()
    leaks = [
        name
        for name, secret in (
            ("TWILIO_AUTH_TOKEN", token),
            ("DJANGO_SECRET_KEY", secret_key),
            ("EMAIL_HOST_PASSWORD", env["EMAIL_HOST_PASSWORD"]),
        )
        if secret in output
    ]
    full_numbers = sorted(
        {
            phone
            for phone in phones
            if phone in output or phone.lstrip("+") in output or phone.replace("+", "%2B") in output
        }
    )
    report(
        "7e worker logs",
        rows=rows.count(),
        sent=rows.filter(status="sent").count(),
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=0,
        loglevel=loglevel,
        log_lines=len(output.splitlines()),
        secrets_found=len(leaks),
        full_numbers_found=len(full_numbers),
        sms_posts=sum(sent.values()),
    )
    assert sum(sent.values()) > 0 and "sent" in output  # it did send, and logged it
    assert leaks == []
    assert full_numbers == [], [
        line for line in output.splitlines() if any(p.lstrip("+") in line for p in full_numbers)
    ][:5]
