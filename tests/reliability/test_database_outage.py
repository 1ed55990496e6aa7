"""Scenario 4, database outage. The PostgreSQL server is shared with other test runs on this
machine, so it is never stopped: the outage is simulated by cutting the network path. The worker
subprocess reaches the test database through a TCP proxy in this process; in the middle of a
sweep the proxy closes every connection and refuses new ones for a few seconds, then listens
again. The sweep that was running fails cleanly, the next one recovers, and after the lease
and a reclaim nothing is lost or stuck in `sending`."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from appointments import services
from appointments.models import Patient
from config.celery import app as celery_app
from notifications.models import Notification
from tasks.maintenance import reclaim_expired_leases, sweep_due_notifications

from .harness import TcpProxy, database_url, duplicates, report, sms_by_recipient, sms_figures, task_outcome, wait_until

ROWS = 20
LEASE = 4
CUT_SECONDS = 3
SLOW = 0.3  # each first send takes this long, so the sweep is mid-batch when the path is cut


@pytest.fixture
def pg_proxy(skip_on_sqlite):
    s = connection.settings_dict
    proxy = TcpProxy(s["HOST"] or "127.0.0.1", s["PORT"] or 5432)
    try:
        yield proxy
    finally:
        proxy.close()


def run_task(task, workers, timeout=30):
    """Enqueue a task and wait for its outcome in the worker's log: ("ok", result) or ("error", text)."""
    task_id = task.delay().id
    return wait_until(lambda: task_outcome(workers, task_id), timeout, 0.1, message=f"outcome of {task.name}")


def test_sweep_fails_cleanly_when_the_database_goes_away_and_the_next_recovers(
    spawn, worker_env, pg_proxy, settings, twilio
):
    settings.NOTIFICATIONS_LEASE_SECONDS = LEASE
    # Batches of 5: 5 slow sends (1.5 s) stay inside the 4 s lease (see the sweep-batch defect);
    # the sweep task stops claiming after a third of the lease, so each sweep sends one batch.
    env = worker_env(
        db_url=database_url(port=pg_proxy.port), NOTIFICATIONS_LEASE_SECONDS=LEASE, NOTIFICATIONS_SWEEP_BATCH_SIZE=5
    )
    patients = Patient.objects.bulk_create(
        Patient(name=f"Cut {i}", email=f"cut{i}@example.com", phone=f"+1415840{i:04d}", channels=["sms"])
        for i in range(ROWS)
    )
    for patient in patients:
        twilio.script(patient.phone, ("slow", SLOW))
    for patient in patients:
        services.book(
            patient=patient, provider="Dr. Cut", starts_at=timezone.now() + timedelta(days=7), duration_minutes=30
        )
    celery_app.control.purge()  # drop the on-commit tasks: the sweep is the sender here
    rows = Notification.objects.filter(kind="booking_confirmation")

    worker = spawn.worker("cut-worker", env)
    workers = [worker]
    interrupted_id = sweep_due_notifications.delay().id
    # The sweep claims a batch of 5 and is at its second send: cut the path now.
    wait_until(lambda: len(twilio.requests) >= 2, 30, 0.01, message="the sweep under way")
    pg_proxy.cut()
    cut_at = time.monotonic()
    interrupted = wait_until(lambda: task_outcome(workers, interrupted_id), 30, 0.1, message="the cut sweep's outcome")
    during_cut = run_task(sweep_due_notifications, workers)  # a sweep while the path is down
    time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
    pg_proxy.restore()
    cut_seconds = time.monotonic() - cut_at
    stuck_sending_after_cut = rows.filter(status="sending").count()

    # Sweeps after the path is back, one at a time, until one succeeds.
    after = []
    while len(after) < 6 and (not after or after[-1][0] != "ok"):
        after.append(run_task(sweep_due_notifications, workers))
    # Then what beat does after the lease: reclaim, sweep, until every row is settled.
    time.sleep(LEASE)
    deadline = time.monotonic() + 60
    while rows.filter(status__in=["pending", "sending"]).exists() and time.monotonic() < deadline:
        run_task(reclaim_expired_leases, workers)
        run_task(sweep_due_notifications, workers)
    worker.stop(timeout=30)

    sms = sms_by_recipient(twilio)
    statuses, figures = sms_figures(rows, patients, sms)
    failures_after_restore = sum(1 for outcome, _ in after if outcome == "error")
    report(
        "4 database outage",
        **figures,
        connections_cut=pg_proxy.closed_by_cut,
        cut_s=round(cut_seconds, 1),
        cut_sweep=interrupted[0],
        sweep_during_cut=during_cut[0],
        sending_after_cut=stuck_sending_after_cut,
        sweeps_failed_after_restore=failures_after_restore,
    )
    assert interrupted[0] == "error" and "OperationalError" in interrupted[1], interrupted
    assert during_cut[0] == "error" and "OperationalError" in during_cut[1], during_cut
    assert worker.running() is False  # stopped above, after surviving the outage
    assert after[-1][0] == "ok", f"no sweep recovered after the path came back: {after}"
    assert statuses == {"sent": ROWS}
    assert all(sms[p.phone] >= 1 for p in patients)
    # Only a send whose outcome could not be recorded (in flight at the cut) may go out twice.
    assert duplicates(sms) <= stuck_sending_after_cut


def test_every_worker_thread_reconnects_after_the_database_returns(spawn, worker_env, pg_proxy):
    """Workers keep their connections between tasks (CELERY_DB_REUSE_MAX, CONN_HEALTH_CHECKS):
    after the path is cut, the first task on each of the pool's threads must reconnect, not fail."""
    worker = spawn.worker("reconnect-worker", worker_env(db_url=database_url(port=pg_proxy.port)))
    workers = [worker]

    def burst(count=8):
        ids = [sweep_due_notifications.delay().id for _ in range(count)]
        return [wait_until(lambda tid=tid: task_outcome(workers, tid), 30, 0.1, message="sweep outcome") for tid in ids]

    before = burst()  # every thread of the pool takes a task and keeps its connection
    connections = pg_proxy.open_connections
    pg_proxy.cut()
    time.sleep(1)
    pg_proxy.restore()
    after = burst()
    report(
        "4b every thread reconnects",
        rows=0,
        sent=0,
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=0,
        connections_before_cut=connections,
        connections_cut=pg_proxy.closed_by_cut,
        sweeps_failed_after_restore=sum(1 for outcome, _ in after if outcome != "ok"),
    )
    assert [outcome for outcome, _ in before] == ["ok"] * 8
    assert connections >= 2, "the pool's threads did not keep connections: nothing to test"
    assert [outcome for outcome, _ in after] == ["ok"] * 8, after


BLIP_ROWS = 3
BLIP_SEND = 3.0  # each send takes this long; the path is cut while they are under way


def test_outcomes_done_during_a_database_blip_are_written_once_it_passes(spawn, worker_env, pg_proxy, twilio):
    """Scenario 4c: `process_pending_notifications` reaches the database through the proxy; its
    three sends are under way when the path is cut, so the first write of their outcomes meets a
    dropped connection; the path is restored once the command says it will try again (waited
    for, not assumed from a sleep), and the write lands."""
    patients = Patient.objects.bulk_create(
        Patient(name=f"Blip {i}", email=f"blip{i}@example.com", phone=f"+1415890{i:04d}", channels=["sms"])
        for i in range(BLIP_ROWS)
    )
    for patient in patients:
        twilio.script(patient.phone, ("slow", BLIP_SEND))
        services.book(
            patient=patient, provider="Dr. Blip", starts_at=timezone.now() + timedelta(days=7), duration_minutes=30
        )
    rows = Notification.objects.filter(kind="booking_confirmation")
    # A Twilio timeout well past the sends, so they are still under way when the path is cut.
    env = worker_env(
        db_url=database_url(port=pg_proxy.port), NOTIFICATIONS_SEND_THREADS=BLIP_ROWS, TWILIO_HTTP_TIMEOUT=30
    )

    command = spawn.manage("blip-command", env, "process_pending_notifications")
    wait_until(lambda: len(twilio.requests) >= BLIP_ROWS, 30, 0.01, message="the sends under way")
    pg_proxy.cut()
    command.wait_for_output("failed; trying again", timeout=30)  # the outcome write met the cut
    pg_proxy.restore()
    exit_code = command.wait(timeout=30)

    sms = sms_by_recipient(twilio)
    statuses, figures = sms_figures(rows, patients, sms)
    report(
        "4c outcome write during a database blip",
        **figures,
        connections_cut=pg_proxy.closed_by_cut,
        command_exit=exit_code,
        sending_after_blip=statuses["sending"],
    )
    assert exit_code == 0, command.tail()
    assert "sent=3 failed=0 skipped=0 left=0" in command.stdout()
    assert statuses == {"sent": BLIP_ROWS}
    assert all(sms[p.phone] == 1 for p in patients)
