"""The beat sweep that replaces cron: a reminder that falls due goes out on the next sweep,
and sweepers racing each other (or the worker) send every row exactly once."""

import logging
import threading
from collections import Counter
from datetime import timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.utils import timezone

from notifications.channels import Message
from notifications.models import Notification
from notifications.outbox import delivery, models, raw_sql, sweeps
from tasks.maintenance import sweep_due_notifications
from tests.conftest import settled, wait_for

RACE_ROWS = 200
# Distinct numbers, none of them one of Twilio's magic failing test numbers.
RACE_PHONES = [f"+1415600{i:04d}" for i in range(RACE_ROWS)]


def two_hour_reminder(appointment):
    return appointment.notifications.get(
        kind="reminder", channel="sms", scheduled_for=appointment.starts_at - timedelta(hours=2)
    )


def reminders_to(twilio, phone):
    return [r for r in twilio.sent_to(phone) if "reminder" in r.body]


def test_reminder_moved_into_the_past_is_sent_by_the_next_sweep(celery_worker, book, make_patient, twilio):
    patient = make_patient(channels=["sms"], phone="+14155550123")
    appointment = book(patient)
    settled(appointment.notifications.filter(kind="booking_confirmation"))
    reminder = two_hour_reminder(appointment)
    assert reminder.status == "pending" and reminder.scheduled_for > timezone.now()
    # Time passes: the reminder's moment is now behind us.
    Notification.objects.filter(pk=reminder.pk).update(scheduled_for=timezone.now() - timedelta(seconds=1))

    sweep_due_notifications.delay()

    wait_for(lambda: Notification.objects.get(pk=reminder.pk).status == "sent")
    sent = reminders_to(twilio, patient.phone)
    assert len(sent) == 1
    assert "Dr. Ada Lovelace" in sent[0].body
    assert Notification.objects.get(pk=reminder.pk).provider_message_id.startswith("SM")


def test_reminder_falling_due_within_a_second_is_sent_by_a_sweep_after_its_time(
    celery_worker, book, make_patient, twilio
):
    patient = make_patient(channels=["sms"], phone="+14155550124")
    # The 2-hour reminder of an appointment 2 h 2 s away falls due two seconds from now.
    appointment = book(patient, starts_in=timedelta(hours=2, seconds=2))
    settled(appointment.notifications.filter(kind="booking_confirmation"))
    reminder = two_hour_reminder(appointment)
    assert reminder.status == "pending"

    wait_for(lambda: timezone.now() >= reminder.scheduled_for, timeout=5)
    sweep_due_notifications.delay()

    wait_for(lambda: Notification.objects.get(pk=reminder.pk).status == "sent")
    assert len(reminders_to(twilio, patient.phone)) == 1


def test_sweep_leaves_a_reminder_that_is_not_yet_due(db, book, make_patient, twilio):
    patient = make_patient(channels=["sms"], phone="+14155550125")
    appointment = book(patient)

    report = sweeps.sweep()

    assert report.outcomes["sent"] == 1  # the booking confirmation, due at once
    assert set(appointment.notifications.filter(kind="reminder").values_list("status", flat=True)) == {"pending"}
    assert reminders_to(twilio, patient.phone) == []


def test_outcomes_too_many_for_one_statement_are_all_written(db, monkeypatch, book, make_patient):
    # Two rows a statement (a sent row's UPDATE carries 11 values): several UPDATEs.
    monkeypatch.setattr(raw_sql, "MAX_PARAMETERS", 2 * 11)
    appointments = [book(make_patient(channels=["sms"])) for _ in range(5)]
    confirmations = Notification.objects.filter(appointment__in=appointments, kind="booking_confirmation")
    message = Message(text="Your appointment is booked.")
    outcomes = [n.outcome("sent", provider_message_id=f"SM{n.pk}", message=message) for n in confirmations.claim()]

    won = models.record_outcomes(outcomes)

    assert won == set(confirmations.values_list("pk", flat=True))
    assert (
        sorted(confirmations.values_list("status", "attempt_log__outcome", "rendered_text"))
        == [("sent", "sent", message.text)] * 5
    )
    assert sorted(confirmations.values_list("provider_message_id", flat=True)) == sorted(f"SM{pk}" for pk in won)


def book_race_rows(book, make_patient):
    for phone in RACE_PHONES:
        book(make_patient(channels=["sms"], phone=phone))
    return Notification.objects.filter(kind="booking_confirmation")


def assert_each_sent_exactly_once(rows, twilio):
    assert Counter(rows.values_list("status", flat=True)) == {"sent": RACE_ROWS}
    assert Counter(r.to for r in twilio.requests) == Counter(RACE_PHONES)
    assert rows.filter(attempts=1).count() == RACE_ROWS


def test_two_racing_sweeps_send_every_row_exactly_once(transactional_db, book, make_patient, twilio):
    rows = book_race_rows(book, make_patient)  # no worker: the 200 confirmations wait for a sweep
    assert rows.filter(status="pending").count() == RACE_ROWS
    start = threading.Barrier(2)
    reports, errors = [], []

    def sweeper():
        try:
            start.wait(timeout=10)
            reports.append(sweeps.sweep())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    print("racing sweeps sent:", [report.outcomes["sent"] for report in reports])
    assert sum(report.outcomes["sent"] for report in reports) == RACE_ROWS
    assert_each_sent_exactly_once(rows, twilio)


def test_sweep_racing_the_worker_sends_every_row_exactly_once(celery_worker, book, make_patient, twilio):
    stop = threading.Event()
    reports, errors = [], []

    def sweeper():
        try:
            while not stop.is_set():
                reports.append(sweeps.sweep())
                stop.wait(0.005)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=sweeper)
    thread.start()
    try:
        # Each booking's commit hands its confirmation to the worker while the sweep runs.
        rows = book_race_rows(book, make_patient)
        settled(rows, timeout=60)
    finally:
        stop.set()
        thread.join(timeout=60)

    assert not thread.is_alive()
    assert errors == []
    by_sweep = sum(report.outcomes["sent"] for report in reports)
    print(f"sweep sent {by_sweep}, worker sent {RACE_ROWS - by_sweep}")
    assert_each_sent_exactly_once(rows, twilio)


def test_sweep_claims_no_more_rows_than_its_slowest_sends_could_finish_in_its_time_limit(
    db, settings, book, make_patient, twilio
):
    # The longest a send can take here: a look-up and a send of 1 s each; two threads. So a
    # batch that must end within 3.9 s holds 2 × floor(3.9 / 2) = 2 rows, whatever the batch size.
    settings.NOTIFICATIONS_SEND_THREADS = 2
    settings.TWILIO_HTTP_TIMEOUT = settings.EMAIL_TIMEOUT = 1
    settings.RATE_LIMIT_MAX_WAIT = 0
    for i in range(5):
        book(make_patient(channels=["sms"], phone=f"+1415610{i:04d}"))

    report = sweeps.sweep(time_limit=3.9)

    rows = Notification.objects.filter(kind="booking_confirmation").exclude(claimed_at=None)
    batches = Counter(rows.values_list("claimed_at", flat=True))
    assert batches and max(batches.values()) == 2
    assert report.outcomes["sent"] == rows.count() and report.left == 5 - rows.count()


def test_an_outcome_is_written_while_a_slower_send_of_its_batch_is_still_under_way(
    transactional_db, settings, book, make_patient, twilio
):
    """Outcomes wait at most OUTCOME_WRITE_WINDOW for others to share their write, never for
    the batch: a worker that dies mid-batch loses no more than the sends in flight."""
    settings.NOTIFICATIONS_SEND_THREADS = 2
    quick, slow = (two_hour_reminder(book(make_patient(channels=["sms"], phone=p))) for p in RACE_PHONES[:2])
    twilio.script(RACE_PHONES[1], ("slow", 1.0))
    Notification.objects.filter(pk__in=[quick.pk, slow.pk]).update(scheduled_for=timezone.now())
    batch = Notification.objects.filter(pk__in=[quick.pk, slow.pk]).claim()
    sender = threading.Thread(target=lambda: (delivery.deliver(batch), connection.close()))
    sender.start()
    try:
        wait_for(lambda: Notification.objects.get(pk=quick.pk).status == "sent", timeout=0.8, interval=0.02)
        assert Notification.objects.get(pk=slow.pk).status == "sending"
    finally:
        sender.join()
    assert set(Notification.objects.filter(pk__in=[quick.pk, slow.pk]).values_list("status", flat=True)) == {"sent"}


class SoftTimeLimitAtTheFirstLogOf(logging.Filter):
    """The task's soft time limit, struck in the main thread as it logs the first outcome of
    this status (a signal lands between any two bytecodes)."""

    def __init__(self, status):
        super().__init__()
        self.status, self.struck = status, False

    def filter(self, record):
        if not self.struck and getattr(record, "outcome", None) == self.status:
            self.struck = True
            raise SoftTimeLimitExceeded()
        return True


def test_a_soft_time_limit_striking_as_outcomes_are_logged_does_not_write_them_again(db, book, make_patient, twilio):
    rows = [
        book(make_patient(channels=["sms"], phone=p)).notifications.get(kind="booking_confirmation")
        for p in RACE_PHONES[:2]
    ]
    batch = Notification.objects.filter(pk__in=[r.pk for r in rows]).claim()
    limit = SoftTimeLimitAtTheFirstLogOf("sent")
    logging.getLogger("notifications.outbox.delivery").addFilter(limit)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            delivery.deliver(batch)
    finally:
        logging.getLogger("notifications.outbox.delivery").removeFilter(limit)

    assert Counter(Notification.objects.filter(pk__in=[r.pk for r in rows]).values_list("status", flat=True)) == {
        "sent": 2
    }
    assert sorted(r.attempt_log.count() for r in rows) == [1, 1]


def test_a_row_deferred_late_in_its_lease_is_claimed_again_by_the_same_sweep(db, settings, book, make_patient, twilio):
    """A send that would start in the second half of its lease goes back to the queue, and the
    sweep's next claim finds it there even while a send of the batch it left is under way."""
    settings.NOTIFICATIONS_SEND_THREADS = 2
    settings.NOTIFICATIONS_LEASE_SECONDS = 2  # a send starts only within 1 s of its claim
    rows = [two_hour_reminder(book(make_patient(channels=["sms"], phone=p))) for p in RACE_PHONES[:3]]
    Notification.objects.filter(kind="booking_confirmation").update(scheduled_for=timezone.now() + timedelta(days=1))
    Notification.objects.filter(pk__in=[n.pk for n in rows]).update(scheduled_for=timezone.now())
    twilio.script(RACE_PHONES[0], ("slow", 1.5))  # still under way when the third is deferred
    twilio.script(RACE_PHONES[1], ("slow", 1.1))  # the third is handed out after it, too late

    report = sweeps.sweep()

    assert report.left == 0
    assert [Notification.objects.get(pk=n.pk).status for n in rows] == ["sent"] * 3
    assert Notification.objects.get(pk=rows[2].pk).attempts == 1  # the deferral was not counted
