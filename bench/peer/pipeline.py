"""End to end (`--mode e2e`, in `both` too): one run is N emails taken by one side from "asked
for" to "delivered", timed from the start of the first asking process to the end of the last
write, with the start-up of every command inside the window.
- post-office, P processes: P processes of `ask_emails.py` at once, each asking for N ÷ P
  emails by one `mail.send(..., template="booking_confirmation", priority="medium")` each
  (post-office renders the subject, text and HTML then and inserts the email), then
  `send_queued_mail --processes P` as above.
- ours, 1 process: one process of `bench/peer/plan.py` plans N bookings (one row each, the
  confirmation by email, due now; each booking's transaction publishes its send task on
  commit), then `process_pending_notifications --max N` sends them as above. No worker runs, so
  the send tasks the bookings published are left in Redis (flushed after the run): what
  publishing them cost is counted, what they would do is not.
- ours, P processes: the prefork worker of P processes is started (and answers a ping) before
  the window, as deployed; P processes of `plan.py` plan N ÷ P bookings each, and the worker
  sends each booking's confirmation by its send task as the booking commits (the immediate
  path, as deployed); the window closes when the sink has N messages and no row is pending or
  sending. The worker is stopped after.
Both sides render our booking confirmation's three templates with the same values, and send
over SMTP to the same sink. CPU counted: every process of the side (the asking or planning
processes and the sending command, reaped; the worker with its pool's processes), every
PostgreSQL server process (other databases' too: the server is shared with this machine's
other work), and ours also the benchmark's Redis server (from its INFO; post-office uses
none). The rate is the emails the sink received over the window; a run whose sink did not get
each address exactly once is listed as a failure and left out of the medians.
"""

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import redis
from django.db import connection
from django.utils import timezone

from appointments.models import Appointment, Patient
from bench import services, workload
from bench.measure import UNFINISHED, progress
from notifications.models import Notification

from .measure import SEND_TIMEOUT, unsent

KIND = "booking_confirmation"
PLAN = Path(__file__).with_name("plan.py")
POLL = 0.05  # seconds between looks at the sink, then at the rows


@dataclass
class Pipeline:
    side: str
    processes: int
    emails: int  # received by the sink
    seconds: float
    cpu: dict  # seconds: "processes", "PostgreSQL", "Redis"
    problem: str  # "" when every address got exactly one message and every row was sent

    @property
    def per_s(self):
        return self.emails / self.seconds

    def cpu_ms(self, part=None):
        seconds = self.cpu[part] if part else sum(self.cpu.values())
        return seconds * 1000 / max(self.emails, 1)


class _Meter:
    """CPU seconds used since it was made: reaped children, the worker (with its pool), every
    PostgreSQL process, and the Redis server at redis_url."""

    def __init__(self, redis_url, worker_pid=None):
        self.redis, self.worker_pid = redis.Redis.from_url(redis_url), worker_pid
        self.before = self._read()

    def _read(self):
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        by_process = services.cpu_seconds_by_process(self.worker_pid or os.getpid())
        info = self.redis.info("cpu")
        return {
            "processes": children.ru_utime + children.ru_stime + (by_process["worker"] if self.worker_pid else 0),
            "PostgreSQL": by_process["PostgreSQL"],
            "Redis": info["used_cpu_user"] + info["used_cpu_sys"],
        }

    def used(self):
        after = self._read()
        return {part: after[part] - self.before[part] for part in after}


def _slices(count, processes):
    """(first, count) of each of `processes` parts of range(count), as even as can be."""
    size, extra = divmod(count, processes)
    first = 0
    for i in range(processes):
        n = size + (i < extra)
        yield first, n
        first += n


def _all(commands, env, cwd):
    """Run the commands at once and wait for all; any failure stops the benchmark."""
    services.LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(services.LOG_DIR / "peer-commands.log", "ab") as log:
        running = [subprocess.Popen(c, env=env, cwd=cwd, stdout=log, stderr=log) for c in commands]
        for process, command in zip(running, commands, strict=True):
            if process.wait(SEND_TIMEOUT):
                raise RuntimeError(f"{command[:3]} failed: see {services.LOG_DIR / 'peer-commands.log'}")


def peer_pipeline(peer, sink, count, processes, context, redis_url):
    peer.queue(0, context, KIND)
    sink.reset()
    asks = [peer.ask_command(first, n, context, KIND) for first, n in _slices(count, processes)]
    meter = _Meter(redis_url)
    started = time.perf_counter()
    _all(asks, peer.env, peer.directory)
    _all([peer.send_command(processes)], peer.env, peer.directory)
    seconds = time.perf_counter() - started
    expected = {f"peer{n}@example.com" for n in range(count)}
    return _result("post-office", processes, count, seconds, meter.used(), sink, expected, "")


def bookable(count):
    """`count` appointments a week ahead, each of a patient of its own on email alone, written
    before the window; returns the first one's primary key and the addresses."""
    workload.reset()
    starts_at = timezone.now() + timedelta(days=7)
    patients = Patient.objects.bulk_create(
        Patient(name=f"Bench Patient {n}", email=f"bench{n}@example.com", timezone="Europe/London", channels=["email"])
        for n in range(count)
    )
    appointments = Appointment.objects.bulk_create(
        Appointment(patient=p, provider="Dr. Bench", starts_at=starts_at, location="Room 1", reason="Benchmark")
        for p in patients
    )
    connection.close()  # no idle backend of ours inside the window
    return appointments[0].pk, {p.email for p in patients}


def our_pipeline_command(side, env, sink, count, redis_url):
    first, expected = bookable(count)
    sink.reset()
    meter = _Meter(redis_url)
    started = time.perf_counter()
    _all([_plan_command(first, count)], env, side.root)
    _all([[sys.executable, "manage.py", "process_pending_notifications", "--max", str(count)]], env, side.root)
    seconds = time.perf_counter() - started
    used = meter.used()
    services.flush_redis(redis_url)  # the send tasks no worker took
    return _result(side.name, 1, count, seconds, used, sink, expected, unsent())


def our_pipeline_worker(side, env, sink, count, processes, redis_url):
    with services.worker(env, "prefork", processes, name="worker-peer", cwd=side.root) as worker:
        first, expected = bookable(count)
        sink.reset()
        plans = [_plan_command(first + start, n) for start, n in _slices(count, processes)]
        meter = _Meter(redis_url, worker.pid)
        started = time.perf_counter()
        _all(plans, env, side.root)
        deadline = time.monotonic() + SEND_TIMEOUT
        while sink.stats()["messages"] < count and time.monotonic() < deadline:
            time.sleep(POLL)
        rows = Notification.objects.filter(status__in=UNFINISHED)
        while rows.exists() and time.monotonic() < deadline:
            time.sleep(POLL)
        seconds = time.perf_counter() - started
        used = meter.used()
        connection.close()
    return _result(side.name, processes, count, seconds, used, sink, expected, unsent())


def _plan_command(first, count):
    return [sys.executable, str(PLAN), str(first), str(count)]


def _result(side, processes, count, seconds, cpu, sink, expected, problem):
    stats = sink.stats()
    if stats["messages"] != count or stats["more_than_once"] or set(sink.recipients()) != expected:
        problem = f"{problem} sink: {stats['messages']} messages to {stats['addresses']} addresses".strip()
    run = Pipeline(side, processes, stats["messages"], seconds, cpu, problem)
    parts = ", ".join(f"{part} {run.cpu_ms(part):.2f}" for part in cpu)
    progress(
        f"end to end, {side} × {processes}: {run.per_s:,.0f} emails/s, {run.cpu_ms():.2f} ms CPU each ({parts})"
        f"{'; ' + problem if problem else ''} ({timezone.now():%H:%M:%S})"
    )
    return run
