"""Retries with exponential backoff and full jitter, the attempt limit, permanent errors, and
staff putting dead rows back in the queue."""

import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from notifications.models import Notification, NotificationAttempt
from notifications.outbox import sweeps
from notifications.outbox.backoff import retry_delay
from tests.conftest import settled, wait_for

SAMPLES = 2000


# notifications.backoff.retry_delay, sampled many times.


def sample_delays(attempts):
    return [retry_delay(attempts).total_seconds() for _ in range(SAMPLES)]


def test_retry_delay_is_never_negative(settings):
    settings.NOTIFICATIONS_BACKOFF_BASE = 0.5
    settings.NOTIFICATIONS_BACKOFF_MAX = 60
    for attempts in range(0, 12):
        assert min(sample_delays(attempts)) >= 0


def test_retry_delay_ceiling_doubles_per_attempt(settings):
    settings.NOTIFICATIONS_BACKOFF_BASE = 1.0
    settings.NOTIFICATIONS_BACKOFF_MAX = 10_000
    for attempts in range(0, 8):
        ceiling = 2**attempts
        delays = sample_delays(attempts)
        assert max(delays) <= ceiling
        # Full jitter is uniform over [0, ceiling]: 2000 draws all below 95% of it would
        # happen with probability 0.95**2000, about 1e-45.
        assert max(delays) > 0.95 * ceiling
        assert min(delays) < 0.05 * ceiling


def test_retry_delay_is_bounded_by_the_cap(settings):
    settings.NOTIFICATIONS_BACKOFF_BASE = 1.0
    settings.NOTIFICATIONS_BACKOFF_MAX = 10.0
    for attempts in (4, 5, 10, 30, 100):
        delays = sample_delays(attempts)
        assert max(delays) <= 10.0
        assert max(delays) > 9.5


# Transient errors: 503, 503, then accepted.

BASE = 0.2
CAP = 3600.0


def sweep_once_until(condition, timeout=15, **sweep_options):
    """Sweep until condition() holds, one row per sweep, so that the caller's condition sees
    the row after every single attempt."""

    def swept():
        sweeps.sweep(max_rows=1, **sweep_options)
        return condition()

    return wait_for(swept, timeout=timeout)


@pytest.fixture
def retried_until_sent(db, settings, make_patient, book, twilio):
    """One SMS booking confirmation whose first two sends get 503: swept one row at a time,
    noting the row after every failure, until it is sent."""
    settings.NOTIFICATIONS_BACKOFF_BASE = BASE
    settings.NOTIFICATIONS_BACKOFF_MAX = CAP
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 5
    patient = make_patient(channels=["sms"], phone="+14155550142")
    twilio.script(patient.phone, 503, 503)
    row = book(patient).notifications.get(kind="booking_confirmation")
    retries = {}  # attempt number -> next_attempt_at set by that failure

    def sent():
        current = Notification.objects.get(pk=row.pk)
        if current.status == "failed":
            retries[current.attempts] = current.next_attempt_at
        return current.status == "sent"

    sweep_once_until(sent)
    row.refresh_from_db()
    return row, retries, twilio.sent_to(patient.phone)


def test_transient_errors_are_retried_until_sent(retried_until_sent):
    row, _, requests = retried_until_sent
    assert row.status == "sent"
    assert row.attempts == 3
    assert len(requests) == 3
    assert row.provider_message_id.startswith("SM")


def test_attempt_history_records_failed_failed_sent(retried_until_sent):
    row, _, _ = retried_until_sent
    history = list(NotificationAttempt.objects.filter(notification=row).order_by("number"))
    assert [(a.number, a.outcome) for a in history] == [(1, "failed"), (2, "failed"), (3, "sent")]
    assert [a.error_code for a in history] == ["20500", "20500", ""]
    assert all("503" in a.error for a in history[:2])


def test_each_retry_waits_a_jittered_backoff_within_its_ceiling(retried_until_sent):
    row, retries, _ = retried_until_sent
    failures = NotificationAttempt.objects.filter(notification=row, outcome="failed").order_by("number")
    assert sorted(retries) == [1, 2]
    for failure in failures:
        ceiling = min(CAP, BASE * 2**failure.number)
        gap = (retries[failure.number] - failure.finished_at).total_seconds()
        print(
            f"backoff after attempt {failure.number}: next_attempt_at - finished_at = {gap:.3f}s (ceiling {ceiling}s)"
        )
        # next_attempt_at is computed from a clock read a few microseconds before the attempt
        # row's finished_at (two timezone.now() calls in models.py), hence the 1 ms allowance.
        assert -0.001 <= gap <= ceiling
        # The claim that started the failed attempt precedes the retry time on any reading.
        assert retries[failure.number] >= failure.started_at


def test_stand_in_never_receives_a_retry_before_next_attempt_at(retried_until_sent):
    row, retries, requests = retried_until_sent
    wall_minus_monotonic = time.time() - time.monotonic()
    for number, request in enumerate(requests[1:], start=2):
        not_before = retries[number - 1].timestamp()
        arrived = request.at + wall_minus_monotonic
        print(f"retry {number} reached the stand-in {arrived - not_before:.3f}s after next_attempt_at")
        assert arrived >= not_before
    # And the claim of every retry came after the retry time the failure before it set.
    attempts = {a.number: a for a in NotificationAttempt.objects.filter(notification=row)}
    assert attempts[2].started_at >= retries[1]
    assert attempts[3].started_at >= retries[2]


# The attempt limit.


@pytest.fixture
def dead_after_max_attempts(db, settings, make_patient, book, twilio):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    settings.NOTIFICATIONS_BACKOFF_BASE = 0.05
    settings.NOTIFICATIONS_BACKOFF_MAX = 0.1
    patient = make_patient(channels=["sms"], phone="+14155550143")
    twilio.script(patient.phone, *[503] * 50)  # 503 for as long as the test lasts
    row = book(patient).notifications.get(kind="booking_confirmation")
    sweep_once_until(lambda: Notification.objects.get(pk=row.pk).is_dead)
    row.refresh_from_db()
    return row, patient


def test_row_dies_after_max_attempts_of_transient_errors(dead_after_max_attempts, twilio):
    row, patient = dead_after_max_attempts
    assert row.status == "failed"
    assert row.next_attempt_at is None
    assert row.attempts == 2
    assert len(twilio.sent_to(patient.phone)) == 2


def test_row_dead_after_max_attempts_is_never_sent_again(dead_after_max_attempts, twilio):
    row, patient = dead_after_max_attempts
    for _ in range(5):
        sweeps.sweep(include_failed=True)
        call_command("process_pending_notifications", "--retry-failed", stdout=StringIO())
    assert len(twilio.sent_to(patient.phone)) == 2
    # Not merely waiting out a long backoff: no moment ever makes it due again.
    assert not Notification.objects.due(timezone.now() + timedelta(days=3650)).filter(pk=row.pk).exists()


# Permanent errors: Twilio's 21211 (invalid number) never comes back.

INVALID_NUMBER = "+15005550001"


@pytest.fixture
def invalid_number_row(db, make_patient, book, twilio):
    patient = make_patient(channels=["sms"], phone=INVALID_NUMBER)
    row = book(patient).notifications.get(kind="booking_confirmation")
    sweeps.sweep()
    row.refresh_from_db()
    return row


def test_invalid_number_dies_after_exactly_one_call(invalid_number_row, twilio):
    row = invalid_number_row
    assert row.is_dead
    assert row.attempts == 1
    assert row.error_code == "21211"
    assert "not a valid phone number" in row.last_error
    assert len(twilio.sent_to(INVALID_NUMBER)) == 1


def test_invalid_number_is_not_called_again_by_retry_failed_sweeps(invalid_number_row, twilio):
    for _ in range(3):
        call_command("process_pending_notifications", "--retry-failed", stdout=StringIO())
    assert len(twilio.sent_to(INVALID_NUMBER)) == 1
    invalid_number_row.refresh_from_db()
    assert invalid_number_row.is_dead and invalid_number_row.attempts == 1


# Staff put dead rows back in the queue.


def test_api_retry_puts_a_dead_row_back_to_pending_with_attempts_reset(invalid_number_row, staff_client):
    response = staff_client.post(f"/api/notifications/{invalid_number_row.pk}/retry/")
    assert response.status_code == 200, response.content
    row = Notification.objects.get(pk=invalid_number_row.pk)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, None)
    assert row.scheduled_for <= timezone.now()  # due at once
    assert response.json()["status"] == "pending"
    assert response.json()["attempts"] == 0


def test_api_retry_refuses_a_row_that_has_not_failed(db, book, make_patient, staff_client):
    row = book(make_patient(channels=["sms"])).notifications.get(kind="booking_confirmation")
    response = staff_client.post(f"/api/notifications/{row.pk}/retry/")
    assert response.status_code == 409
    assert "status" in response.json()
    assert Notification.objects.get(pk=row.pk).status == "pending"


def test_admin_retry_selected_puts_dead_rows_back_to_pending(invalid_number_row, admin_client):
    response = admin_client.post(
        "/admin/notifications/notification/",
        {"action": "retry_selected", "_selected_action": [invalid_number_row.pk], "index": 0},
    )
    assert response.status_code == 302
    row = Notification.objects.get(pk=invalid_number_row.pk)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, None)


def test_row_retried_by_staff_is_sent_by_the_worker(celery_worker, settings, make_patient, book, staff_client, twilio):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    patient = make_patient(channels=["sms"], phone="+14155550144", email="")
    twilio.script(patient.phone, 503)  # the first send fails, and with one attempt allowed, for good
    confirmations = book(patient).notifications.filter(kind="booking_confirmation")
    [row] = settled(confirmations)
    assert row.is_dead

    assert staff_client.post(f"/api/notifications/{row.pk}/retry/").status_code == 200

    wait_for(lambda: Notification.objects.get(pk=row.pk).status == "sent")
    assert len(twilio.sent_to(patient.phone)) == 2
