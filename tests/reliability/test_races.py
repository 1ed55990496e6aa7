"""Scenario 1, races: 1,000 due rows and every sender there is, at once. Two worker
subprocesses (4 threads each) take the on-commit tasks of the bookings and the beat sweep,
enqueued over and over; two `process_pending_notifications --max 1000` commands run side by
side, round after round. Every row must reach its recipient exactly once."""

import threading
import time
from collections import Counter
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from appointments import services
from appointments.models import Patient
from notifications.models import Notification
from notifications.outbox import delivery
from tasks.maintenance import sweep_due_notifications

from .harness import SWEEP_RESULT, duplicates, emails_by_recipient, report, sent_by_tasks, sms_by_recipient, wait_until

PATIENTS = 500  # each chose sms and email: 1,000 due booking confirmations, 1,000 distinct recipients
CHUNK = 50  # bookings per transaction: their on-commit tasks are published together
SWEEP_EVERY = 0.25  # seconds between two sweep tasks (beat would say NOTIFICATIONS_SWEEP_INTERVAL)
MAX_SWEEPS = 600
MAX_COMMAND_ROUNDS = 20
SETTLE_TIMEOUT = 150


def test_racing_senders_send_every_row_exactly_once(spawn, worker_env, mail_dir, twilio):
    env = worker_env()
    patients = Patient.objects.bulk_create(
        Patient(
            name=f"Race {i}",
            email=f"race{i}@example.com",
            phone=f"+1415800{i:04d}",
            timezone="Europe/London",
            channels=["sms", "email"],
        )
        for i in range(PATIENTS)
    )
    stop = threading.Event()
    sweeps_enqueued = []
    command_runs = []
    errors = []

    def enqueue_sweeps():
        try:
            while not stop.is_set() and len(sweeps_enqueued) < MAX_SWEEPS:
                sweeps_enqueued.append(sweep_due_notifications.delay().id)
                stop.wait(SWEEP_EVERY)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    def run_commands():
        try:
            for round_ in range(MAX_COMMAND_ROUNDS):
                if stop.is_set():
                    return
                pair = [
                    spawn.manage(f"command-{round_}-{k}", env, "process_pending_notifications", "--max", "1000")
                    for k in (1, 2)
                ]
                for command in pair:
                    command.wait(timeout=120)
                    assert command.popen.returncode == 0, command.tail()
                    command_runs.append(command.stdout().strip())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    # The bookings come first, while no worker runs: their on-commit tasks wait in the queue,
    # every other chunk's followed by a sweep task, so that every sender starts on the same 1,000 due rows.
    started = time.monotonic()
    starts_at = timezone.now() + timedelta(days=7)
    for first in range(0, PATIENTS, CHUNK):
        with transaction.atomic():  # the chunk's on-commit tasks are published when it commits
            for patient in patients[first : first + CHUNK]:
                services.book(
                    patient=patient,
                    provider="Dr. Race",
                    starts_at=starts_at,
                    duration_minutes=30,
                    location="Room 1",
                    reason="Race",
                )
        if first % (2 * CHUNK):
            sweeps_enqueued.append(sweep_due_notifications.delay().id)
    booked = time.monotonic() - started
    rows = Notification.objects.filter(kind="booking_confirmation")
    assert rows.count() == 2 * PATIENTS
    assert rows.filter(status="pending").count() == 2 * PATIENTS

    # Then all at once: two workers (which start on the queued on-commit tasks as soon as they
    # are up), two commands (round after round), sweeps every 0.25 s.
    started = time.monotonic()
    threads = [threading.Thread(target=enqueue_sweeps), threading.Thread(target=run_commands)]
    workers = []
    try:
        workers = [spawn.worker(f"race-worker-{n}", env, wait=False) for n in (1, 2)]
        for worker in workers:
            worker.wait_for_output("Connected to redis", 60)  # consuming from here on
        for thread in threads:
            thread.start()
        wait_until(
            lambda: not rows.filter(status__in=["pending", "sending"]).exists(),
            SETTLE_TIMEOUT,
            0.2,
            message="every confirmation settled",
        )
        settled_after = time.monotonic() - started
    finally:
        stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=150)
    # A warm shutdown lets every task still running finish: nothing is sent after we count.
    for worker in workers:
        worker.stop(timeout=60)

    assert errors == []
    sms = sms_by_recipient(twilio)
    emails = emails_by_recipient(mail_dir)
    phones = {p.phone for p in patients}
    addresses = {p.email for p in patients}
    statuses = Counter(rows.values_list("status", flat=True))
    received = {**{a: emails[a] for a in addresses}, **{p: sms[p] for p in phones}}
    tasks = sent_by_tasks(workers)
    by_commands = sum(int(SWEEP_RESULT.search(out).group(1)) for out in command_runs if SWEEP_RESULT.search(out))
    report(
        "1 races",
        rows=rows.count(),
        sent=statuses["sent"],
        duplicates=duplicates(sms) + duplicates(emails),
        lost=sum(1 for n in received.values() if n == 0),
        stuck=statuses["pending"] + statuses["sending"],
        five_xx=0,
        by_on_commit=tasks["on_commit_sent"],
        by_sweep_tasks=tasks["sweep_sent"],
        by_commands=by_commands,
        on_commit_tasks=tasks["on_commit_tasks"],
        on_commit_rows_taken_by_others=2 * tasks["on_commit_tasks"] - tasks["on_commit_rows"],
        sweeps_enqueued=len(sweeps_enqueued),
        command_runs=len(command_runs),
        booked_s=round(booked, 1),
        settled_s=round(settled_after, 1),
    )
    assert statuses == {"sent": 2 * PATIENTS}
    assert set(sms) <= phones and set(emails) <= addresses  # nothing went to anyone else
    assert Counter(received.values()) == {1: 2 * PATIENTS}, "each recipient got exactly one message"
    assert rows.exclude(attempts=1).count() == 0, "no row was claimed twice"
    assert tasks["on_commit_sent"] + tasks["sweep_sent"] + by_commands == 2 * PATIENTS


def test_reminder_claimed_before_its_appointment_is_cancelled_or_moved_is_not_sent(transactional_db, settings, twilio):
    """Scenario 1b: a batch of four due SMS reminders is claimed; while its first send is under
    way (the stand-in takes 1 s over it, one send thread) two of the other appointments are
    cancelled and one is moved, through the services as the API does. The three must not go."""
    settings.NOTIFICATIONS_SEND_THREADS = 1
    patients = Patient.objects.bulk_create(
        Patient(name=f"Late change {i}", email="", phone=f"+1415870{i:04d}", channels=["sms"]) for i in range(4)
    )
    appointments = [
        services.book(patient=p, provider="Dr. Race", starts_at=timezone.now() + timedelta(days=2), duration_minutes=30)
        for p in patients
    ]
    reminders = Notification.objects.filter(kind="reminder", appointment__in=appointments, status="pending")
    first_reminders = [reminders.filter(appointment=a).earliest("scheduled_for").pk for a in appointments]
    Notification.objects.filter(pk__in=first_reminders).update(scheduled_for=timezone.now() - timedelta(minutes=1))
    twilio.reset()
    twilio.script(patients[0].phone, ("slow", 1.0))
    claimed = sorted(Notification.objects.filter(pk__in=first_reminders).claim(), key=lambda n: n.patient.phone)

    def change_the_others():
        try:
            services.cancel(appointments[1].pk, reason="unwell")
            services.cancel(appointments[2].pk, reason="clinic closed")
            services.reschedule(appointments[3].pk, starts_at=appointments[3].starts_at + timedelta(days=1))
        finally:
            connection.close()

    changer = threading.Timer(0.3, change_the_others)
    changer.start()
    delivery.deliver(claimed)
    changer.join()

    reminders_sent = Counter(r.to for r in twilio.requests if "reminder" in r.body)
    rows = {n.patient.phone: Notification.objects.get(pk=n.pk) for n in claimed}
    changed = [p.phone for p in patients[1:]]
    report(
        "1b cancelled or moved after the claim",
        rows=len(claimed),
        sent=sum(1 for row in rows.values() if row.status == "sent"),
        duplicates=duplicates(reminders_sent),
        lost=int(reminders_sent[patients[0].phone] == 0),
        stuck=sum(1 for row in rows.values() if row.status in ("pending", "sending")),
        five_xx=0,
        reminders_sent_after_change=f"{sum(reminders_sent[p] for p in changed)}/{len(changed)}",
    )
    assert reminders_sent[patients[0].phone] == 1 and rows[patients[0].phone].status == "sent"
    assert [reminders_sent[phone] for phone in changed] == [0, 0, 0]
    # Withdrawn by the cancel or the move while their worker held them, before their sends started.
    assert [rows[phone].status for phone in changed] == ["cancelled", "cancelled", "cancelled"]
