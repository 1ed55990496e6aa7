"""Scenario 2, worker crash: a worker subprocess is SIGKILLed while it holds claimed rows whose
sends are in flight (the stand-in Twilio answers them slowly). After the lease (3 s here) the
reclaim task returns them to the queue and a second worker sends them. Nothing is lost; a
message the provider had accepted when its worker died is sent again (at most one duplicate
per row in flight at the kill): the lease gives at-least-once delivery, by design.

Around it: a sweep batch that outlives its lease sends no row twice (2b); a reclaimed send
Twilio had accepted is looked up, not sent again (2c); a worker killed mid-sweep duplicates at
most its sends in flight, since each outcome is written as its send completes, with those
done within 10 ms of it (2d)."""

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from appointments import services
from appointments.models import Patient
from config.celery import app as celery_app
from notifications.channels import get_channel
from notifications.messages.rendering import render
from notifications.models import Notification
from notifications.outbox import sweeps
from notifications.outbox.models import record_send_starts
from tasks.delivery import send_notifications
from tasks.maintenance import reclaim_expired_leases, sweep_due_notifications

from . import harness
from .harness import duplicates, report, sms_by_recipient, sms_figures, wait_until

LEASE = 3  # seconds, in the test's settings and in the workers' environment
ROWS = 24
SLOW = 1.5  # the stand-in takes this long over each first send, so sends are in flight at the kill


def sms_patients(count, prefix):
    return Patient.objects.bulk_create(
        Patient(name=f"Crash {i}", email=f"crash{i}@example.com", phone=f"{prefix}{i:04d}", channels=["sms"])
        for i in range(count)
    )


def book_all(patients):
    for patient in patients:
        services.book(
            patient=patient,
            provider="Dr. Crash",
            starts_at=timezone.now() + timedelta(days=7),
            duration_minutes=30,
        )
    return Notification.objects.filter(kind="booking_confirmation")


def test_killed_worker_rows_are_reclaimed_and_sent(spawn, worker_env, settings, twilio):
    settings.NOTIFICATIONS_LEASE_SECONDS = LEASE
    # Sweeps claim one row at a time here: with a batch, the slow sends of the second worker
    # would outlive the 3 s lease and add duplicates of their own (the defect of the next test).
    env = worker_env(NOTIFICATIONS_LEASE_SECONDS=LEASE, NOTIFICATIONS_SWEEP_BATCH_SIZE=1)
    patients = sms_patients(ROWS, "+1415810")
    for patient in patients:
        twilio.script(patient.phone, ("slow", SLOW))
    rows = book_all(patients)  # their on-commit tasks wait in the queue for the first worker

    doomed = spawn.worker("crash-worker-a", env)
    wait_until(lambda: len(twilio.requests) >= 6, 30, 0.02, message="sends in flight")
    doomed.kill()
    killed_at = time.monotonic()
    held = list(rows.filter(status="sending").values_list("recipient", flat=True))
    in_flight = sum(1 for phone in held if twilio.sent_to(phone))
    sent_before = rows.filter(status="sent").count()

    survivor = spawn.worker("crash-worker-b", env)
    # What beat does: reclaim expired leases, sweep due rows; here every second until done.
    enqueued = 0
    deadline = time.monotonic() + 60
    while rows.filter(status__in=["pending", "sending"]).exists() and time.monotonic() < deadline:
        if time.monotonic() - killed_at > LEASE:
            reclaim_expired_leases.delay()
        sweep_due_notifications.delay()
        enqueued += 1
        time.sleep(1)
    survivor.stop(timeout=30)

    sms = sms_by_recipient(twilio)
    statuses, figures = sms_figures(rows, patients, sms)
    report(
        "2 worker crash",
        **figures,
        held_at_kill=len(held),
        in_flight_at_kill=in_flight,
        sent_before_kill=sent_before,
        beat_rounds=enqueued,
    )
    assert held, "the worker held no claimed row when it was killed"
    assert statuses == {"sent": ROWS}
    assert all(sms[p.phone] >= 1 for p in patients), "a row was lost"
    # At least once: only a send in flight at the kill can have gone out twice.
    assert duplicates(sms) <= in_flight
    assert all(sms[phone] <= 2 for phone in held)


def test_sweep_batch_that_outlives_its_lease_sends_no_row_twice(transactional_db, settings, twilio):
    """The management command's sweep, in a thread, holds 12 slow rows in one batch (two rounds
    of 8 threads, 3 s); beat's reclaim and another sweeper run as they would once the 2 s lease
    has expired."""
    settings.NOTIFICATIONS_LEASE_SECONDS = 2
    rows_count = 12
    patients = sms_patients(rows_count, "+1415820")
    for patient in patients:
        twilio.script(patient.phone, ("slow", 1.5))
    rows = book_all(patients)  # `transactional_db` and no worker: the on-commit tasks just wait
    errors = []

    def command_sweep():
        try:
            sweeps.sweep()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=command_sweep)
    first.start()
    try:
        wait_until(lambda: rows.filter(status="sending").count() == rows_count, 10, 0.02, message="batch claimed")
        claimed_at = min(rows.values_list("claimed_at", flat=True))
        lease_ends = claimed_at + timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS)

        # Waited for, not assumed from a sleep: the first sweep's first round (one send per
        # thread) has reached Twilio, and the batch's lease has expired while it holds the rest.
        def first_round_sent_and_lease_expired():
            return len(twilio.requests) >= settings.NOTIFICATIONS_SEND_THREADS and timezone.now() > lease_ends

        wait_until(first_round_sent_and_lease_expired, 15, 0.02, message="first round sent, lease expired")
        first_sweep_running = first.is_alive()
        requests_before_reclaim = len(twilio.requests)
        reclaimed_at = timezone.now()
        reclaimed = sweeps.reclaim_expired_leases()["returned"]
        sweeps.sweep()  # beat's next sweep (or a second command)
    finally:
        first.join(timeout=30)
    assert errors == []

    sms = sms_by_recipient(twilio)
    statuses, figures = sms_figures(rows, patients, sms)
    report(
        "2b sweep batch outlives lease",
        **figures,
        reclaimed_while_held=reclaimed,
        first_sweep_running_at_reclaim=first_sweep_running,
        sends_before_reclaim=requests_before_reclaim,
    )
    # The order the scenario needs, asserted: the reclaim and the second sweep came after the
    # batch's lease had ended, and after the first sweep had sent a first round of it.
    assert reclaimed_at > lease_ends
    assert requests_before_reclaim >= settings.NOTIFICATIONS_SEND_THREADS
    assert statuses == {"sent": rows_count}
    assert duplicates(sms) == 0, f"sent twice: {sorted(p for p, n in sms.items() if n > 1)}"


def test_sms_twilio_accepted_before_its_worker_died_is_not_sent_again(db, settings, twilio, make_patient, book):
    """What the SIGKILL above does to each send in flight, step by step in this process."""
    settings.NOTIFICATIONS_LEASE_SECONDS = 1
    appointment = book(make_patient(channels=["sms"], phone="+14155550188"))
    row = appointment.notifications.get(kind="booking_confirmation")
    [claimed] = Notification.objects.filter(pk=row.pk).claim()
    record_send_starts([claimed])  # handed out to a send thread: its send's start recorded first
    get_channel("sms").send(claimed, render(claimed))  # Twilio accepts it; the worker dies before recording it
    Notification.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(seconds=30))

    sweeps.reclaim_expired_leases()
    sweeps.sweep()

    row.refresh_from_db()
    report(
        "2c reclaimed send accepted before the crash",
        rows=1,
        sent=int(row.status == "sent"),
        duplicates=len(twilio.accepted) - 1,
        lost=int(not twilio.accepted),
        stuck=int(row.status in ("pending", "sending")),
        five_xx=0,
        lookups=len(twilio.lookups),
    )
    assert row.status == "sent"
    assert len(twilio.accepted) == 1


def test_worker_killed_mid_sweep_duplicates_only_its_sends_in_flight(spawn, worker_env, settings, twilio):
    settings.NOTIFICATIONS_LEASE_SECONDS = LEASE
    env = worker_env(NOTIFICATIONS_LEASE_SECONDS=LEASE, NOTIFICATIONS_SEND_THREADS=8)
    slow = 1.0
    patients = sms_patients(ROWS, "+1415830")
    for patient in patients:
        twilio.script(patient.phone, ("slow", slow))
    rows = book_all(patients)
    celery_app.control.purge()  # the on-commit tasks: a sweep is the sender here
    sweep_due_notifications.delay()
    doomed = spawn.worker("sweep-worker-a", env)
    wait_until(lambda: len(twilio.requests) >= 10, 30, 0.01, message="the sweep's second round of sends")
    doomed.kill()
    killed_at = time.monotonic()
    held = rows.filter(status="sending").count()
    in_flight = sum(1 for r in twilio.requests if killed_at - r.at < slow)
    answered = len(twilio.requests) - in_flight

    survivor = spawn.worker("sweep-worker-b", env)
    time.sleep(max(0.0, LEASE - (time.monotonic() - killed_at)) + 0.2)
    deadline = time.monotonic() + 40
    while rows.filter(status__in=["pending", "sending"]).exists() and time.monotonic() < deadline:
        reclaim_expired_leases.delay()
        sweep_due_notifications.delay()
        time.sleep(1)
    survivor.stop(timeout=30)

    sms = sms_by_recipient(twilio)
    statuses, figures = sms_figures(rows, patients, sms)
    report(
        "2d worker killed mid-sweep",
        **figures,
        held_at_kill=held,
        answered_unrecorded_at_kill=answered,
        in_flight_at_kill=in_flight,
    )
    assert statuses == {"sent": ROWS}
    assert all(sms[p.phone] >= 1 for p in patients)
    assert duplicates(sms) <= in_flight


SOFT_LIMIT_LEASE = 15  # the task's soft time limit is half of it (7 s), its hard limit 10 s
SOFT_LIMIT_ROWS = 8
SOFT_LIMIT_SEND = 3.0  # each send: the third pair starts at 6 s and is in flight at the soft limit


def test_task_at_its_soft_time_limit_writes_the_outcomes_of_its_sends_in_flight(spawn, worker_env, settings, twilio):
    """Scenario 2e: a prefork worker (time limits need it) sends one batch of 8 SMS rows (one
    send_notifications task; the sweep would claim no more than fit) with two send threads, each
    send 3 s: the task's soft time limit (7 s) strikes with two sends in flight and two rows not
    yet handed out. The sends in flight have their outcomes written and the two others go back
    to the queue; no row is left `sending` for its lease to find."""
    env = worker_env(
        NOTIFICATIONS_LEASE_SECONDS=SOFT_LIMIT_LEASE,
        NOTIFICATIONS_SEND_THREADS=2,
        NOTIFICATIONS_SWEEP_BATCH_SIZE=SOFT_LIMIT_ROWS,
        TWILIO_HTTP_TIMEOUT=SOFT_LIMIT_SEND + 2,
    )
    patients = sms_patients(SOFT_LIMIT_ROWS, "+1415820")
    for patient in patients:
        twilio.script(patient.phone, ("slow", SOFT_LIMIT_SEND))
    rows = book_all(patients)
    celery_app.control.purge()  # the task below is the sender here
    worker = spawn.worker("soft-limit-worker", env, concurrency=1, pool="prefork")
    # The limits travel in the message, as beat's would with the same settings.
    limits = {"soft_time_limit": SOFT_LIMIT_LEASE // 2, "time_limit": SOFT_LIMIT_LEASE * 2 // 3}
    task_id = send_notifications.apply_async((list(rows.values_list("id", flat=True)),), **limits).id
    outcome = wait_until(lambda: harness.task_outcome([worker], task_id), 30, 0.1, message="the task's outcome")
    statuses = Counter(rows.values_list("status", flat=True))
    sending_after = statuses["sending"]
    answered_unrecorded = sum(1 for row in rows.filter(status="sending") if twilio.sent_to(row.recipient))
    worker.stop(timeout=30)

    sms = sms_by_recipient(twilio)
    report(
        "2e task at its soft time limit",
        rows=SOFT_LIMIT_ROWS,
        sent=statuses["sent"],
        duplicates=duplicates(sms),
        lost=0,
        stuck=sending_after,
        five_xx=0,
        task=outcome[0],
        sending_after_soft_limit=sending_after,
        answered_unrecorded=answered_unrecorded,
        back_to_pending=statuses["pending"],
    )
    assert outcome[0] == "error" and "SoftTimeLimitExceeded" in outcome[1], outcome
    assert sending_after == 0
    # Every send that started is recorded as sent (the last pair was in flight at the limit);
    # the rows never handed out wait in the queue. How many pairs fit depends on the machine.
    assert statuses["sent"] == len(twilio.requests)
    assert statuses["pending"] == SOFT_LIMIT_ROWS - len(twilio.requests) > 0


FALLBACK_ROWS = 3
SLOW_FALLBACK = """
CREATE FUNCTION test_slow_fallback() RETURNS trigger AS $$
BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER test_slow_fallback BEFORE INSERT ON notifications_notification
FOR EACH ROW WHEN (NEW.fallback_for_id IS NOT NULL) EXECUTE FUNCTION test_slow_fallback();
"""
FALLBACK_INSERTS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND query LIKE 'INSERT INTO "notifications_notification"%%'
"""


@pytest.fixture
def slow_fallback_inserts(skip_on_sqlite):
    """Every INSERT of a fallback row sleeps in the database (a trigger), so a worker can be
    killed between a text message's death and its fallback."""
    with connection.cursor() as cursor:
        cursor.execute(SLOW_FALLBACK)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS test_slow_fallback ON notifications_notification")
            cursor.execute("DROP FUNCTION IF EXISTS test_slow_fallback()")


def test_worker_killed_between_a_death_and_its_fallback_loses_no_fallback(
    spawn, worker_env, settings, twilio, slow_fallback_inserts
):
    """Scenario 2f: three SMS rows die at once (Twilio's invalid-number error) and each must go
    by email instead. The worker is SIGKILLed while it writes their fallbacks; after the lease,
    another worker's reclaim and sweep must still get every patient their email."""
    settings.NOTIFICATIONS_LEASE_SECONDS = LEASE
    env = worker_env(NOTIFICATIONS_LEASE_SECONDS=LEASE)
    patients = Patient.objects.bulk_create(
        Patient(name=f"Fallback {i}", email=f"fallback{i}@example.com", phone="+15005550001", channels=["sms"])
        for i in range(FALLBACK_ROWS)
    )
    rows = book_all(patients).filter(channel="sms")
    celery_app.control.purge()
    doomed = spawn.worker("fallback-worker-a", env)
    sweep_due_notifications.delay()

    def fallback_insert_running():
        with connection.cursor() as cursor:
            cursor.execute(FALLBACK_INSERTS)
            return [pid for (pid,) in cursor.fetchall()]

    sleeping = wait_until(fallback_insert_running, 30, 0.05, message="a fallback being written")
    doomed.kill()
    dead_at_kill = rows.dead().count()
    with connection.cursor() as cursor:  # the server notices the client is gone
        for pid in sleeping:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        cursor.execute("DROP TRIGGER test_slow_fallback ON notifications_notification")

    survivor = spawn.worker("fallback-worker-b", env)
    fallbacks = Notification.objects.filter(fallback_for__in=rows)
    deadline = time.monotonic() + 60
    time.sleep(LEASE)
    while fallbacks.filter(status="sent").count() < FALLBACK_ROWS and time.monotonic() < deadline:
        reclaim_expired_leases.delay()
        sweep_due_notifications.delay()
        time.sleep(1)
    survivor.stop(timeout=30)

    statuses = Counter(rows.values_list("status", flat=True))
    emails = harness.emails_by_recipient(env["EMAIL_FILE_PATH"])
    report(
        "2f killed between a death and its fallback",
        rows=FALLBACK_ROWS,
        sent=fallbacks.filter(status="sent").count(),
        duplicates=duplicates(emails),
        lost=sum(1 for p in patients if emails[p.email] == 0),
        stuck=statuses["pending"] + statuses["sending"],
        five_xx=0,
        dead_at_kill=dead_at_kill,
        fallback_emails=sum(emails.values()),
    )
    assert statuses == {"failed": FALLBACK_ROWS}
    assert {p.email: emails[p.email] for p in patients} == {p.email: 1 for p in patients}


COMMAND_ROWS = 6


def test_command_killed_mid_run_leaves_nothing_for_the_next_run_to_miss(spawn, worker_env, settings, twilio):
    """Scenario 2g, a host without beat: `process_pending_notifications` is SIGKILLed with
    claimed rows in flight; once their lease has expired, the next run of the command alone
    (no beat, no reclaim task) must send them."""
    env = worker_env(NOTIFICATIONS_LEASE_SECONDS=LEASE, NOTIFICATIONS_SEND_THREADS=2)
    patients = sms_patients(COMMAND_ROWS, "+1415830")
    for patient in patients:
        twilio.script(patient.phone, ("slow", SLOW))
    rows = book_all(patients)
    celery_app.control.purge()

    crashed = spawn.manage("command-crashed", env, "process_pending_notifications")
    wait_until(lambda: len(twilio.requests) >= 2, 30, 0.02, message="the first sends in flight")
    crashed.kill()
    held_at_kill = rows.filter(status="sending").count()
    time.sleep(LEASE + 0.5)
    second = spawn.manage("command-next", env, "process_pending_notifications")
    second.wait(timeout=60)

    statuses = Counter(rows.values_list("status", flat=True))
    sms = sms_by_recipient(twilio)
    _, figures = sms_figures(rows, patients, sms)
    report(
        "2g command killed mid-run",
        **figures,
        held_at_kill=held_at_kill,
        next_run=second.stdout().strip(),
    )
    assert held_at_kill == COMMAND_ROWS
    assert statuses == {"sent": COMMAND_ROWS}, second.tail()
    assert all(sms[p.phone] == 1 for p in patients)
