"""GET /metrics: Prometheus's text format, for staff or a bearer token, with the queue and the
sends a real worker made, read back with prometheus_client's own parser."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from notifications.models import Notification, NotificationAttempt
from tests.conftest import in_role, settled

TOKEN = "scrape-token-0123456789"


def scrape(client, **headers):
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")  # the text exposition format
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def sample(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def test_anonymous_scrape_is_401_naming_authorization(client, db):
    response = client.get("/metrics")

    assert response.status_code == 401
    assert "Authorization" in response.json()
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_token_is_401(client, db, metrics_token):
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 401


def test_a_token_of_non_ascii_characters_is_401_not_a_server_error(client, db, metrics_token):
    # A WSGI server hands header bytes over as Latin-1 text, so any byte above 127 arrives so.
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-tökén-é").status_code == 401


def test_no_token_configured_refuses_an_empty_bearer(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_signed_in_patient_is_403(client, make_patient):
    patient = make_patient(password="patient-pass-123")
    client.force_login(patient.user)

    assert client.get("/metrics").status_code == 403


def test_staff_session_reads_the_metrics(client, staff_user):
    client.force_login(in_role(staff_user, "Auditor"))

    assert sample(scrape(client), "notifications_due_rows") == 0


def test_bearer_token_reads_the_metrics(client, db, metrics_token):
    assert sample(scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}"), "notifications_due_rows") == 0


def test_due_backlog_and_the_oldest_due_rows_age(client, book, metrics_token):
    appointment = book()  # no worker: its confirmations stay due
    waited = timedelta(minutes=7)
    made_at = timezone.now()
    appointment.notifications.filter(kind="booking_confirmation").update(scheduled_for=made_at - waited)

    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert sample(samples, "notifications_due_rows") == 2
    # At most the time that has passed since, however slow the machine (no slack guessed).
    oldest_by_now = (timezone.now() - made_at + waited).total_seconds()
    assert waited.total_seconds() <= sample(samples, "notifications_oldest_due_age_seconds") <= oldest_by_now
    assert sample(samples, "notifications_rows", status="pending", channel="sms") >= 1


def test_a_real_workers_sends_are_counted_by_channel_outcome_and_error_code(
    client, celery_worker, book, make_patient, twilio, metrics_token
):
    twilio.script("+14155550100", ("slow", 0.3))
    book(make_patient(phone="+14155550100"))
    book(make_patient(phone="+15005550001"))  # Twilio refuses the number: 21211, dead at once
    settled(Notification.objects.filter(kind="booking_confirmation"))

    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert sample(samples, "notifications_send_attempts_total", channel="email", outcome="sent") == 2
    assert sample(samples, "notifications_send_attempts_total", channel="sms", outcome="sent") == 1
    assert sample(samples, "notifications_send_attempts_total", channel="sms", outcome="failed") == 1
    assert sample(samples, "notifications_send_errors_total", channel="sms", error_code="21211") == 1
    assert sample(samples, "notifications_rows", status="sent", channel="sms") == 1
    assert sample(samples, "notifications_rows", status="failed", channel="sms") == 1
    # Both SMS attempts in the histogram; the slow one (0.3 s at least) never in the 0.25 s bucket.
    # How fast the refused one was depends on the machine, so it is not asserted.
    assert sample(samples, "notifications_send_latency_seconds_count", channel="sms") == 2
    assert sample(samples, "notifications_send_latency_seconds_bucket", channel="sms", le="0.25") <= 1
    assert sample(samples, "notifications_send_latency_seconds_bucket", channel="sms", le="+Inf") == 2
    assert sample(samples, "notifications_send_latency_seconds_sum", channel="sms") >= 0.3


def test_yesterdays_attempts_are_not_in_todays_counters(client, book, metrics_token):
    row = book().notifications.get(kind="booking_confirmation", channel="email")
    yesterday = timezone.now() - timedelta(days=1)
    NotificationAttempt.objects.create(
        notification=row, number=1, started_at=yesterday, finished_at=yesterday, outcome="sent"
    )

    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert sample(samples, "notifications_send_attempts_total", channel="email", outcome="sent") is None


@pytest.mark.parametrize(("waited", "stalled"), [(1000, 1), (800, 0)])
def test_a_backlog_whose_oldest_due_row_waited_past_the_threshold_is_stalled(
    client, book, settings, metrics_token, waited, stalled
):
    settings.NOTIFICATIONS_BACKLOG_STALLED_SECONDS = 900
    appointment = book()  # no worker: its confirmations stay due
    appointment.notifications.filter(kind="booking_confirmation").update(
        scheduled_for=timezone.now() - timedelta(seconds=waited)
    )

    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert sample(samples, "notifications_backlog_stalled") == stalled
    assert sample(samples, "notifications_backlog_stalled_after_seconds") == 900
    assert waited <= sample(samples, "notifications_oldest_due_age_seconds") < waited + 60


def test_verification_codes_sent_are_counted_by_channel(client, patient_client, metrics_token, twilio):
    url = f"/api/patients/{patient_client.patient.pk}/"
    patient_client.patch(url, {"phone": "+14155550199"}, format="json")
    patient_client.patch(url, {"email": "new-me@example.com", "current_password": "patient-pass-123"}, format="json")
    patient_client.patch(url, {"phone": "+14155550198"}, format="json")

    samples = scrape(client, HTTP_AUTHORIZATION=f"Bearer {metrics_token}")

    assert sample(samples, "verification_codes_sent_total", channel="sms") == 2
    assert sample(samples, "verification_codes_sent_total", channel="email") == 1
