"""An event's send task sends its own rows and, on the same threads, the notices other events
made due moments before, whose own tasks still wait in the queue: a burst of bookings costs a
task and a batch for several bookings, not for each. Older rows and retries stay the sweep's."""

from collections import Counter
from datetime import timedelta

from django.utils import timezone

from notifications import delivery

PHONES = [f"+1415620{n:04d}" for n in range(4)]


def confirmations(appointment):
    return appointment.notifications.filter(kind="booking_confirmation")


def ids(appointment):
    return list(confirmations(appointment).values_list("id", flat=True))


def booked(book, make_patient, count):
    return [book(make_patient(channels=["sms"], phone=phone)) for phone in PHONES[:count]]


def test_an_event_task_also_sends_the_notices_other_events_made_due_moments_before(book, make_patient, twilio):
    first, *others = booked(book, make_patient, 3)

    outcomes = delivery.send_event_notifications(ids(first))

    assert outcomes == Counter(sent=3)
    assert [len(twilio.sent_to(phone)) for phone in PHONES[:3]] == [1, 1, 1]
    assert {row.status for appointment in others for row in confirmations(appointment)} == {"sent"}


def test_the_tasks_queued_behind_find_their_rows_sent_and_send_nothing_again(book, make_patient, twilio):
    first, second = booked(book, make_patient, 2)
    delivery.send_event_notifications(ids(first))

    outcomes = delivery.send_event_notifications(ids(second))

    assert outcomes == Counter()
    assert [len(twilio.sent_to(phone)) for phone in PHONES[:2]] == [1, 1]


def test_rows_due_longer_ago_and_retries_are_left_to_the_sweep(book, make_patient, twilio):
    first, backlog, retry = booked(book, make_patient, 3)
    confirmations(backlog).update(scheduled_for=timezone.now() - timedelta(seconds=delivery.FRESH_SECONDS + 1))
    confirmations(retry).update(status="failed", next_attempt_at=timezone.now() - timedelta(seconds=1))

    outcomes = delivery.send_event_notifications(ids(first))

    assert outcomes == Counter(sent=1)
    assert [row.status for row in confirmations(backlog)] == ["pending"]
    assert [row.status for row in confirmations(retry)] == ["failed"]
    assert [len(twilio.sent_to(phone)) for phone in PHONES[:3]] == [1, 0, 0]


def test_a_task_whose_own_rows_were_taken_leaves_the_others_to_their_own_tasks(book, make_patient, twilio):
    first, second = booked(book, make_patient, 2)
    delivery.send_notifications(ids(first))

    outcomes = delivery.send_event_notifications(ids(first))

    assert outcomes == Counter()
    assert [row.status for row in confirmations(second)] == ["pending"]
