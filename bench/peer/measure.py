"""Inside each side's timed window (one run: N emails sent by one side):
- post-office, `send_queued_mail --processes P`: the command's start-up (Python, Django), then
  batch by batch (100): select the queued emails, build each message from what was rendered at
  queue time, send on 5 threads a process (P processes forked a batch), mark them sent, insert
  a log row per email; until none is queued. Queueing and rendering happen before the window.
- ours, single process, `process_pending_notifications --max N`: the command's start-up, then
  batch by batch (50), each claimed as the one before is all handed out (conditional UPDATE,
  read back): each row's appointment and patient read again (a read serving 50 ms), rendered
  from its templates and sent on the 8 send threads, which keep their SMTP connections for the
  run; the outcomes, with the rendered message and the attempt history, written every 50 ms.
- ours, P processes: the prefork worker is started (and answers a ping) before the rows are
  written; the window opens when P `notifications.sweep_due` tasks are enqueued and closes when
  no row is pending or sending; the worker is stopped after.
The CPU counted is that of the sending processes only: the command (with any processes it
forked and reaped), or the worker with its pool's processes; not PostgreSQL, Redis or the sink.
"""

import resource
import subprocess
import sys
import time
from dataclasses import dataclass

from django.db.models import Count
from django.test import override_settings
from django.utils import timezone

from bench import floor, services, workload
from bench.measure import UNFINISHED, progress
from config.celery import app
from notifications.messages.rendering import message_context
from notifications.messages.snapshot import snapshot
from notifications.models import Notification, NotificationStatus

SEND_TIMEOUT = 300  # seconds before a run is abandoned
POLL = 0.05  # seconds between looks at the rows while the worker sweeps


@dataclass
class Ours:
    """Our side, run from a checkout: this one, or an earlier version given with --baseline."""

    name: str
    root: object


@dataclass
class Send:
    side: str
    processes: int
    emails: int
    seconds: float
    cpu_seconds: float
    connections: int
    problem: str  # "" when every address got exactly one message and every row was sent

    @property
    def per_s(self):
        return self.emails / self.seconds

    @property
    def cpu_ms(self):
        return self.cpu_seconds * 1000 / self.emails


def peer_context():
    """The values our reminder renders with, for the peer's queue (patient_name varies)."""
    appointment = workload.appointments(1)[0]
    context = message_context(snapshot(appointment))
    return {key: value for key, value in context.items() if isinstance(value, str | int)}


def peer_send(peer, sink, count, processes, context):
    peer.queue(count, context)
    sink.reset()
    seconds, cpu = _timed_command(peer.send_command(processes), peer.env, peer.directory)
    expected = {f"peer{n}@example.com" for n in range(count)}
    return _result("post-office", processes, count, seconds, cpu, sink, expected, "")


def our_rows(count):
    """`count` due email reminders, each to a patient of its own; returns their addresses."""
    workload.reset()
    appointments = workload.appointments(count)
    workload.due_reminders(appointments, count, ("email",))
    return {appointment.patient.email for appointment in appointments}


def our_command_send(side, env, sink, count):
    expected = our_rows(count)
    sink.reset()
    command = [sys.executable, "manage.py", "process_pending_notifications", "--max", str(count)]
    seconds, cpu = _timed_command(command, env, side.root)
    return _result(side.name, 1, count, seconds, cpu, sink, expected, unsent())


def our_worker_send(side, env, sink, count, processes):
    """Our prefork worker, started (from the side's checkout) before the rows are written and
    stopped after, so that only one side's processes are alive at a time."""
    with services.worker(env, "prefork", processes, name="worker-peer", cwd=side.root) as worker:
        expected = our_rows(count)
        sink.reset()
        rows = Notification.objects.filter(status__in=UNFINISHED)
        cpu_before = services.cpu_seconds_by_process(worker.pid)["worker"]
        started = time.perf_counter()
        for _ in range(processes):
            app.send_task("notifications.sweep_due")
        deadline = time.monotonic() + SEND_TIMEOUT
        while rows.exists() and time.monotonic() < deadline:
            time.sleep(POLL)
        seconds = time.perf_counter() - started
        cpu = services.cpu_seconds_by_process(worker.pid)["worker"] - cpu_before
    return _result(side.name, processes, count, seconds, cpu, sink, expected, unsent())


def our_floor(smtp_port, count):
    """What rendering a reminder's email and sending it over SMTP to the sink (on an open
    connection, as a send thread does) cost this process's CPU, each: our single process's
    floor, with no claim, no database and no start-up."""
    progress(f"floor: {count:,} renders and SMTP sends of a reminder's email in this process")
    smtp = {"EMAIL_BACKEND": "notifications.channels.email.SMTPBackend", "EMAIL_HOST": "127.0.0.1"}
    with override_settings(**smtp, EMAIL_PORT=smtp_port):
        return floor.parts_ms(count, ("email",), time.process_time)


def _timed_command(command, env, cwd):
    """Run a command; its wall time and the CPU time of it and the processes it reaped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    services.LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(services.LOG_DIR / "peer-commands.log", "ab") as log:
        subprocess.run(command, env=env, cwd=cwd, check=True, timeout=SEND_TIMEOUT, stdout=log, stderr=log)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def unsent():
    by_status = dict(Notification.objects.values_list("status").annotate(n=Count("pk")))
    left = {status: n for status, n in by_status.items() if status != NotificationStatus.SENT}
    return f"rows not sent: {left}" if left else ""


def _result(side, processes, count, seconds, cpu, sink, expected, problem):
    stats = sink.stats()
    if stats["messages"] != count or stats["more_than_once"] or set(sink.recipients()) != expected:
        problem = f"{problem} sink: {stats['messages']} messages to {stats['addresses']} addresses".strip()
    send = Send(side, processes, count, seconds, cpu, stats["connections"], problem)
    progress(
        f"{side} × {processes}: {send.per_s:,.0f} emails/s, {send.cpu_ms:.2f} ms CPU each, "
        f"{send.connections:,} SMTP connections{'; ' + problem if problem else ''} ({timezone.now():%H:%M:%S})"
    )
    return send
