"""Scenario 6, hostile input: schemathesis throws generated and malformed requests at every
operation of /api/schema/ as staff (no answer may be a 5xx); hypothesis checks the planning
and backoff properties; malformed and oversized bodies hit the Twilio webhook (4xx, never
5xx); markup in patient names and appointment reasons is escaped in the HTML email."""

from collections import Counter
from datetime import datetime, time, timedelta
from urllib.parse import urlencode

import pytest
import schemathesis
from django.core import mail
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import QueryDict
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from twilio.request_validator import RequestValidator

from accounts.tokens import issue_token
from appointments import services
from appointments.models import Location, Patient, Provider
from config.wsgi import application
from integrations.models import WebhookEndpoint
from notifications.channels import get_channel
from notifications.messages.rendering import render
from notifications.messages.store import save_template
from notifications.models import MessageTemplateRevision, Notification
from notifications.outbox import backoff
from notifications.outbox.planning import reminder_times
from tests.conftest import in_role

from .harness import report

EXAMPLES = 8  # per operation, generation mode and id choice: about 400 requests, well under a minute
WEBHOOK = "/webhooks/twilio/status/"
CHANNELS = ["email", "sms", "whatsapp", "in_app"]


@pytest.fixture
def wsgi_in_test_transaction():
    """Requests through the WSGI handler must not close the test's connection (Django's own
    test client disconnects the same receivers)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


# schemathesis


def test_schemathesis_finds_no_server_error(db, wsgi_in_test_transaction, django_user_model, make_patient, book):
    staff = django_user_model.objects.create_user("fuzz-staff", "fuzz@clinic.example", "x-pass-123", is_staff=True)
    in_role(staff, "Clinic manager")
    headers = {"Authorization": f"Token {issue_token(staff)}"}
    patient = make_patient(channels=["email", "sms", "in_app"], password="patient-pass-123")
    appointment = book(patient)
    row = appointment.notifications.filter(channel="in_app").first()
    template = save_template(
        None, {"channel": "sms", "kind": "reminder", "language": "es", "text": "Cita el {{ date }}"}, staff
    )
    revision = MessageTemplateRevision.objects.get()
    real_ids = {
        "appointments": appointment.pk,
        "patients": patient.pk,
        "notifications": row.pk,
        "inbox": row.pk,
        "templates": template.pk,
        "template-revisions": revision.pk,
        "providers": Provider.objects.get_or_create(name="Dr. Ada Lovelace")[0].pk,
        "locations": Location.objects.get_or_create(name="Room 4, Main Street Clinic")[0].pk,
        "webhook-endpoints": WebhookEndpoint.objects.create(
            url="https://clinic.example/hooks", events=["appointment.confirmed"]
        ).pk,
    }

    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_in_test_transaction)
    statuses = Counter()
    server_errors = []
    operations = unsatisfiable = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        strategies = [
            operation.as_strategy(mode)
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        ]
        if "{id}" in operation.path:  # half the cases aim at a row that exists
            collection = operation.path.split("/")[2]
            real = {"id": real_ids[collection]}
            strategies += [
                operation.as_strategy(mode, path_parameters=real)
                for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
            ]

        for strategy in strategies:

            @hsettings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def call(case):
                response = case.call(headers=headers)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.operation.label} -> {response.status_code}: {case.as_curl_command(headers)}"
                    )

            try:
                call()
            except Unsatisfiable:  # nothing to make negative in an operation without inputs
                unsatisfiable += 1

    requests = sum(statuses.values())
    report(
        "6a schemathesis",
        rows=requests,
        sent=0,
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=sum(n for code, n in statuses.items() if code >= 500),
        operations=operations,
        strategies_without_cases=unsatisfiable,
        statuses="/".join(f"{code}:{n}" for code, n in sorted(statuses.items())),
        schemathesis=schemathesis.__version__,
    )
    assert operations >= 17
    assert server_errors == [], "\n".join(server_errors[:10])


# hypothesis: planning


offsets = st.fixed_dictionaries(
    {},
    optional={
        "days_before": st.integers(0, 30),
        "hours_before": st.integers(0, 72),
        "minutes_before": st.integers(0, 600),
    },
).filter(lambda entry: any(entry.values()))  # a reminder is some time before the appointment
schedules = st.lists(
    offsets.flatmap(
        lambda entry: st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4, unique=True).map(
            lambda channels: {**entry, "channels": channels}
        )
    ),
    max_size=6,
)
aware_times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones())


@hsettings(max_examples=200, deadline=None, derandomize=True)
@given(starts_at=aware_times, schedule=schedules)
def test_every_reminder_time_is_before_the_appointment(starts_at, schedule):
    times = list(reminder_times(starts_at, schedule))
    assert all(at < starts_at for at, _ in times)
    assert len(times) == sum(len(entry["channels"]) for entry in schedule)
    report_once("6b reminder_times property", examples=200)


_reported = set()


def report_once(scenario, examples):
    """A hypothesis test runs its body many times; its figures line (rows: the examples it is
    set to run) is printed once."""
    if scenario not in _reported:
        _reported.add(scenario)
        report(scenario, rows=examples, sent=0, duplicates=0, lost=0, stuck=0, five_xx=0)


QUIET_WINDOWS = [None, (time(21), time(8)), (time(22, 30), time(6, 15)), (time(8), time(20))]
ZONES = ["UTC", "Europe/London", "America/New_York", "Asia/Kolkata", "Pacific/Auckland", "America/St_Johns"]


@hsettings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    starts_in=st.integers(1, 60 * 24 * 10),  # minutes
    moved_by=st.integers(-60 * 24 * 5, 60 * 24 * 5).filter(bool),
    channels=st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4, unique=True),
    zone=st.sampled_from(ZONES),
    quiet=st.sampled_from(QUIET_WINDOWS),
)
def test_booking_and_rescheduling_plan_reminders_before_the_appointment(db, starts_in, moved_by, channels, zone, quiet):
    """Whatever the patient's zone and quiet hours: one reminder per scheduled (time, channel),
    none after the appointment, none moved earlier than planned; rescheduling cancels every
    reminder of the old time still waiting and plans those of the new time."""
    quiet_hours = {"sms": quiet, "whatsapp": quiet} if quiet else {}
    with override_settings(NOTIFICATIONS_QUIET_HOURS=quiet_hours):
        patient = Patient.objects.create(
            name="P", email="p@example.com", phone="+14155550100", channels=channels, timezone=zone
        )
        first = timezone.now() + timedelta(minutes=starts_in)
        appointment = services.book(patient=patient, provider="Dr. H", starts_at=first, duration_minutes=30)
        reminders = Notification.objects.filter(appointment=appointment, kind="reminder")
        check_reminders(list(reminders), first, channels, appointment.created_at)
        pending_before = set(reminders.filter(status="pending").values_list("pk", flat=True))
        planned_before = set(reminders.values_list("pk", flat=True))

        second = first + timedelta(minutes=moved_by)
        services.reschedule(appointment.pk, starts_at=second)
        appointment.refresh_from_db()
    # Every reminder of the old time that was waiting is cancelled ...
    assert set(Notification.objects.filter(pk__in=pending_before).values_list("status", flat=True)) <= {"cancelled"}
    # ... and the new time's reminders are planned, all before it. (A new reminder time already
    # past may coincide with an old row and not be planned again: it would be skipped anyway.)
    live = [r for r in reminders.exclude(pk__in=planned_before)]
    check_reminders(live, second, channels, appointment.updated_at, complete=False)
    assert not reminders.filter(status="pending", scheduled_for__lte=appointment.updated_at).exists()
    notices = Notification.objects.filter(appointment=appointment, kind="reschedule")
    assert sorted(notices.values_list("channel", flat=True)) == sorted(channels)
    report_once("6c booking/reschedule planning property", examples=40)


def check_reminders(rows, starts_at, channels, planned_at, complete=True):
    nominal = sorted((at, c) for at, c in reminder_times(starts_at) if c in channels)
    for row in rows:
        assert row.scheduled_for < starts_at, "a reminder after the appointment"
        assert row.status == ("skipped" if row.scheduled_for <= planned_at else "pending")
    # Quiet hours only ever move a reminder later, never past the appointment.
    by_channel = {}
    for row in rows:
        by_channel.setdefault(row.channel, []).append(row.scheduled_for)
    for channel in channels:
        planned = sorted(by_channel.get(channel, []))
        wanted = sorted(at for at, c in nominal if c == channel)
        if complete or all(at > planned_at for at in wanted):
            assert len(planned) == len(wanted), (channel, planned, wanted)
            assert all(p >= w for p, w in zip(planned, wanted, strict=True))


# hypothesis: backoff


@hsettings(max_examples=150, deadline=None, derandomize=True)
@given(base=st.floats(0.01, 600), cap=st.floats(1, 86_400), attempts=st.integers(0, 200))
def test_backoff_is_bounded_and_its_ceiling_grows_to_the_cap(base, cap, attempts):
    with override_settings(NOTIFICATIONS_BACKOFF_BASE=base, NOTIFICATIONS_BACKOFF_MAX=cap):
        ceiling = min(cap, base * 2**attempts)
        for _ in range(5):
            delay = backoff.retry_delay(attempts).total_seconds()
            assert 0 <= delay <= ceiling + 1e-6
        with pytest.MonkeyPatch.context() as patch:  # the top of each draw: the ceiling itself
            patch.setattr(backoff.random, "uniform", lambda low, high: high)
            ceilings = [backoff.retry_delay(a).total_seconds() for a in range(attempts + 2)]
    assert all(later >= earlier for earlier, later in zip(ceilings, ceilings[1:], strict=False))
    # (timedelta keeps microseconds: a ceiling within 1e-5 s of the cap has reached it)
    assert all(later > earlier for earlier, later in zip(ceilings, ceilings[1:], strict=False) if earlier < cap - 1e-5)
    assert ceilings[-1] <= cap + 1e-6
    if base * 2 ** (attempts + 1) >= cap:
        assert ceilings[-1] == pytest.approx(cap)
    report_once("6d backoff property", examples=150)


@hsettings(max_examples=20, deadline=None, derandomize=True)
@given(attempts=st.integers(1000, 100_000))
def test_backoff_stays_at_the_cap_for_any_attempt_count(attempts):
    assert backoff.retry_delay(attempts).total_seconds() <= 3600


# The Twilio webhook: malformed and oversized bodies.


def signed(params, token="standin-token"):
    return RequestValidator(token).compute_signature(f"http://testserver{WEBHOOK}", params)


def hostile_bodies():
    """(name, body bytes, content type, extra headers). Only the last two are validly signed."""
    form = "application/x-www-form-urlencoded"
    good = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
    boundary = "XyZ"
    return [
        ("empty", b"", form, {}),
        ("oversized form (3 MB)", b"Body=" + b"a" * 3_000_000, form, {}),
        (
            "oversized and signed",
            ("MessageSid=SMx&MessageStatus=sent&Body=" + "a" * 3_000_000).encode(),
            form,
            {"HTTP_X_TWILIO_SIGNATURE": "x" * 28},
        ),
        ("1,500 fields", "&".join(f"f{i}=v" for i in range(1500)).encode(), form, {}),
        ("not UTF-8", b"MessageSid=\xff\xfe\xfd&MessageStatus=\xc3\x28", form, {}),
        ("unknown charset", b"MessageSid=SMx", form + "; charset=no-such-charset", {}),
        (
            "broken multipart",
            b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nb',
            f"multipart/form-data; boundary={boundary}",
            {},
        ),
        ("multipart without boundary", b"garbage", "multipart/form-data", {}),
        ("json", b'{"MessageSid": "SMx", "MessageStatus": "delivered"}', "application/json", {}),
        ("binary", bytes(range(256)) * 40, "application/octet-stream", {}),
        ("huge signature header", urlencode(good).encode(), form, {"HTTP_X_TWILIO_SIGNATURE": "A" * 60_000}),
        (
            "signed, no sid",
            urlencode({"MessageStatus": "sent"}).encode(),
            form,
            {"HTTP_X_TWILIO_SIGNATURE": signed({"MessageStatus": "sent"})},
        ),
        (
            "signed, unknown status",
            urlencode({"MessageSid": "SMx", "MessageStatus": "exploded"}).encode(),
            form,
            {"HTTP_X_TWILIO_SIGNATURE": signed({"MessageSid": "SMx", "MessageStatus": "exploded"})},
        ),
        (
            "signed, nul byte",
            urlencode({"MessageSid": "SM\x00x", "MessageStatus": "sent\x00"}).encode(),
            form,
            {"HTTP_X_TWILIO_SIGNATURE": signed({"MessageSid": "SM\x00x", "MessageStatus": "sent\x00"})},
        ),
    ]


@pytest.fixture
def no_callback_url(settings):
    settings.TWILIO_STATUS_CALLBACK_URL = ""


def test_malformed_and_oversized_webhook_bodies_get_4xx(db, client, no_callback_url):
    answers = {}
    for name, body, content_type, headers in hostile_bodies():
        response = client.generic("POST", WEBHOOK, body, content_type=content_type, **headers)
        answers[name] = response.status_code
    # Validly signed but odd: a repeated field is answered like any receipt (the last value counts).
    repeated = "MessageSid=SMx&MessageStatus=sent&MessageStatus=read"
    signed_odd = client.generic(
        "POST",
        WEBHOOK,
        repeated.encode(),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signed(QueryDict(repeated)),
    ).status_code
    assert signed_odd < 500
    answers["GET"] = client.get(WEBHOOK).status_code
    answers["PUT"] = client.put(WEBHOOK, b"x", content_type="text/plain").status_code
    report(
        "6e webhook hostile bodies",
        rows=len(answers),
        sent=0,
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=sum(1 for code in answers.values() if code >= 500),
        statuses="/".join(f"{code}:{n}" for code, n in sorted(Counter(answers.values()).items())),
    )
    assert {name: code for name, code in answers.items() if not 400 <= code < 500} == {}


@hsettings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=4000),
        st.text(max_size=2000).map(str.encode),
        st.dictionaries(st.text(max_size=30), st.text(max_size=200), max_size=30).map(lambda d: urlencode(d).encode()),
    ),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=b",
            "multipart/form-data",
            "text/plain",
            "application/json",
            "application/x-www-form-urlencoded; charset=latin-1",
        ]
    ),
    signature=st.one_of(st.none(), st.text(max_size=64)),
)
def test_fuzzed_webhook_bodies_never_get_a_5xx(db, client, no_callback_url, body, content_type, signature):
    headers = (
        {} if signature is None else {"HTTP_X_TWILIO_SIGNATURE": signature.encode("utf-8", "replace").decode("latin-1")}
    )
    response = client.generic("POST", WEBHOOK, body, content_type=content_type, **headers)
    assert 400 <= response.status_code < 500, (response.status_code, body[:100], content_type)
    report_once("6f webhook fuzz", examples=150)


# Markup in names and reasons: escaped in the HTML part.

MARKUP = {
    "name": '<script>alert("name")</script>',
    "reason": "<img src=x onerror=alert(1)>",
    "provider": "<b onmouseover=alert(2)>Dr</b>",
    "location": '"><svg onload=alert(3)>',
    "cancel": "<script>alert('cancel')</script>",
}
RAW = ["<script", "<img", "<svg", "<b onmouseover", "onerror=alert(1)>"]


def test_markup_in_names_and_reasons_is_escaped_in_the_html_email(db, mailoutbox, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    patient = Patient.objects.create(
        name=MARKUP["name"] + "\r\nBcc: evil@example.com", email="victim@example.com", channels=["email"]
    )
    appointment = services.book(
        patient=patient,
        provider=MARKUP["provider"],
        starts_at=timezone.now() + timedelta(days=3, hours=1),
        duration_minutes=30,
        location=MARKUP["location"],
        reason=MARKUP["reason"],
    )
    services.reschedule(appointment.pk, starts_at=appointment.starts_at + timedelta(days=1))
    services.cancel(appointment.pk, reason=MARKUP["cancel"])
    rows = list(Notification.objects.filter(appointment=appointment, channel="email").order_by("kind"))
    kinds = {row.kind for row in rows}
    leaks = []
    for row in rows:
        message = render(row)
        leaks += [(row.kind, raw) for raw in RAW if raw in message.html]
        assert "&lt;script&gt;" in message.html or "&lt;img" in message.html, row.kind
        assert "\n" not in message.subject and "\r" not in message.subject
        get_channel("email").send(row, message)
    sent = mail.outbox
    bcc_injected = [m for m in sent if m.bcc or "evil@example.com" in str(m.message())[:2000].split("\n\n", 1)[0]]
    report(
        "6g markup escaped in HTML email",
        rows=len(rows),
        sent=len(sent),
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=0,
        kinds="/".join(sorted(kinds)),
        raw_markup_in_html=len(leaks),
        header_injections=len(bcc_injected),
    )
    assert kinds == {"booking_confirmation", "reminder", "reschedule", "cancellation"}
    assert leaks == []
    assert bcc_injected == []
    assert all(m.recipients() == ["victim@example.com"] for m in sent)
