"""Leases: a worker killed mid-send leaves its row in `sending`; once the lease expires the
reclaim task puts it back in the queue, the next sweep sends it once, and the vanished
claimer, should it come back, cannot overwrite the outcome."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from notifications.outbox import delivery, sweeps
from tasks.maintenance import reclaim_expired_leases, sweep_due_notifications
from tests.conftest import settled, wait_for

PHONE = "+14155550150"


def expire_lease(row):
    Notification.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(seconds=30))


def status_of(row):
    return Notification.objects.get(pk=row.pk).status


def reminders_to(twilio, phone):
    return [r for r in twilio.sent_to(phone) if "reminder" in r.body]


@pytest.fixture
def due_row(db, make_patient, book):
    """A due SMS booking confirmation (with `db` alone no worker takes it)."""
    appointment = book(make_patient(channels=["sms"], phone=PHONE))
    return appointment.notifications.get(kind="booking_confirmation")


@pytest.fixture
def abandoned_reminder(celery_worker, settings, make_patient, book):
    """With a real worker running: a due reminder claimed by a claimer that then vanished
    (a killed worker), its 1-second lease long expired. Returns the stale claimer's copy."""
    settings.NOTIFICATIONS_LEASE_SECONDS = 1
    appointment = book(make_patient(channels=["sms"], phone=PHONE))
    settled(appointment.notifications.filter(kind="booking_confirmation"))
    reminder = appointment.notifications.get(kind="reminder", scheduled_for=appointment.starts_at - timedelta(hours=2))
    Notification.objects.filter(pk=reminder.pk).update(scheduled_for=timezone.now() - timedelta(minutes=1))
    [stale] = Notification.objects.filter(pk=reminder.pk).claim()
    expire_lease(stale)
    return stale


def test_claimed_row_never_finished_stays_sending(due_row, twilio):
    [claimed] = Notification.objects.filter(pk=due_row.pk).claim()
    # The claimer dies here. Sweeps leave the row alone while it is held.
    sweeps.sweep()
    row = Notification.objects.get(pk=due_row.pk)
    assert row.status == "sending"
    assert row.claim_token == claimed.claim_token
    assert twilio.requests == []


def test_lease_not_yet_expired_is_not_reclaimed(due_row, settings):
    settings.NOTIFICATIONS_LEASE_SECONDS = 300
    Notification.objects.filter(pk=due_row.pk).claim()
    assert Notification.objects.reclaim_expired() == (0, [])
    assert status_of(due_row) == "sending"


def test_reclaim_task_returns_expired_lease_to_pending(abandoned_reminder):
    assert status_of(abandoned_reminder) == "sending"
    reclaim_expired_leases.delay()
    wait_for(lambda: status_of(abandoned_reminder) == "pending")
    row = Notification.objects.get(pk=abandoned_reminder.pk)
    assert row.claim_token is None


def test_reclaimed_row_is_sent_exactly_once_by_the_next_sweep(abandoned_reminder, twilio):
    reclaim_expired_leases.delay()
    wait_for(lambda: status_of(abandoned_reminder) == "pending")
    sweep_due_notifications.delay()
    wait_for(lambda: status_of(abandoned_reminder) == "sent")
    # Another sweep (run here, in-process) and another reclaim find nothing more to do.
    assert sweep_due_notifications() == "sent=0 failed=0 skipped=0 left=0"
    assert reclaim_expired_leases() == {"returned": 0, "dead": 0}
    assert len(reminders_to(twilio, PHONE)) == 1
    assert Notification.objects.get(pk=abandoned_reminder.pk).attempts == 2  # the abandoned claim, then the sweep's


def test_stale_claimer_late_mark_sent_does_not_overwrite_the_outcome(abandoned_reminder):
    stale = abandoned_reminder
    reclaim_expired_leases.delay()
    wait_for(lambda: status_of(stale) == "pending")
    sweep_due_notifications.delay()
    wait_for(lambda: status_of(stale) == "sent")
    winner = Notification.objects.get(pk=stale.pk)

    assert stale.mark_sent("SMstale0000") is False

    row = Notification.objects.get(pk=stale.pk)
    assert (row.status, row.provider_message_id, row.sent_at) == ("sent", winner.provider_message_id, winner.sent_at)
    assert row.provider_message_id != "SMstale0000"


def test_stale_claimer_late_failure_does_not_overwrite_the_outcome(abandoned_reminder):
    stale = abandoned_reminder
    reclaim_expired_leases.delay()
    wait_for(lambda: status_of(stale) == "pending")
    sweep_due_notifications.delay()
    wait_for(lambda: status_of(stale) == "sent")

    assert stale.mark_failed("Twilio unreachable: ReadTimeout", permanent=False) is False

    row = Notification.objects.get(pk=stale.pk)
    assert (row.status, row.next_attempt_at, row.last_error) == ("sent", None, "")


def test_expired_lease_with_attempts_spent_dies_instead(due_row, settings, twilio):
    settings.NOTIFICATIONS_LEASE_SECONDS = 1
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    [claimed] = Notification.objects.filter(pk=due_row.pk).claim()
    assert claimed.attempts == 1
    expire_lease(claimed)

    assert Notification.objects.reclaim_expired() == (0, [due_row.pk])

    row = Notification.objects.get(pk=due_row.pk)
    assert row.is_dead
    assert row.claim_token is None
    assert "lease expired" in row.last_error
    sweeps.sweep()
    assert twilio.requests == []


def test_text_message_dead_by_lease_expiry_falls_back_to_email(db, settings, make_patient, book, mailoutbox):
    settings.NOTIFICATIONS_LEASE_SECONDS = 1
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    appointment = book(make_patient(channels=["sms"], phone=PHONE))
    sms = appointment.notifications.get(kind="booking_confirmation")
    [claimed] = Notification.objects.filter(pk=sms.pk).claim()
    expire_lease(claimed)

    assert sweeps.reclaim_expired_leases() == {"returned": 0, "dead": 1}

    fallback = Notification.objects.get(fallback_for=sms)
    assert (fallback.channel, fallback.status) == ("email", "pending")
    delivery.send_notification(fallback.pk)
    assert [m.to for m in mailoutbox] == [[appointment.patient.email]]
