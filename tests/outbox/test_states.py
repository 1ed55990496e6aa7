"""The failed states by name: a failed row is retrying (a retry planned) or dead (none), a
dead row knows when it died, and a row that may have been sent says so until one is sent."""

import pytest
from django.utils import timezone

from notifications.models import Notification

PHONE = "+14155550190"


@pytest.fixture
def claimed(db, book, make_patient):
    """The SMS booking confirmation of a new appointment, claimed for a send."""
    appointment = book(make_patient(channels=["sms"], phone=PHONE))
    return Notification.objects.filter(appointment=appointment, kind="booking_confirmation").claim()[0]


def test_transient_failure_is_retrying_not_dead(claimed):
    claimed.mark_failed("Twilio 503: Service error", permanent=False)

    assert list(Notification.objects.retrying()) == [claimed]
    assert not Notification.objects.dead().exists()
    assert Notification.objects.get(pk=claimed.pk).died_at is None


def test_permanent_failure_is_dead_from_the_moment_it_failed(claimed):
    before = timezone.now()
    claimed.mark_failed("Twilio 400 error 21211: invalid number", permanent=True)

    assert list(Notification.objects.dead()) == [claimed]
    assert not Notification.objects.retrying().exists()
    assert before <= Notification.objects.get(pk=claimed.pk).died_at <= timezone.now()


def test_staff_retry_brings_a_dead_row_back_to_life(claimed):
    claimed.mark_failed("Twilio 400 error 21211: invalid number", permanent=True)

    Notification.objects.filter(pk=claimed.pk).retry()

    row = Notification.objects.get(pk=claimed.pk)
    assert row.status == "pending" and row.died_at is None
    assert not Notification.objects.dead().exists()


def test_possibly_sent_survives_a_failure_and_ends_with_a_send(claimed):
    claimed.possibly_sent = True  # as a reclaimed lease leaves it
    claimed.mark_failed("Twilio 503: Service error", permanent=False)
    assert Notification.objects.get(pk=claimed.pk).possibly_sent

    Notification.objects.filter(pk=claimed.pk).update(next_attempt_at=timezone.now())
    [again] = Notification.objects.filter(pk=claimed.pk).claim()
    again.mark_sent("SM" + "1" * 32)

    assert not Notification.objects.get(pk=claimed.pk).possibly_sent
