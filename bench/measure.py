"""The measurements. Each one sets up its own rows, runs, waits (never unboundedly) for the
work to finish, and returns a small result for the report."""

import bisect
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import redis
import requests
from django.db.models import Count, Max
from django.utils import timezone

from appointments.models import Appointment
from config.celery import app
from notifications.models import Notification, NotificationKind, NotificationStatus
from notifications.outbox.sweeps import claim_due_batch

from . import services, workload
from .tasks import COUNTER_KEY, noop

NOOP_QUEUE = "bench"
DRAIN_TIMEOUT = 300  # seconds to wait for queued work to be done
BOOKING_TIMEOUT = 300  # seconds before the remaining bookings of a run are abandoned
REQUEST_TIMEOUT = 30
SWEEP_STALL = 3  # seconds with rows due, none claimed and no change: the sweeps have stopped
CLAIM_BATCH = 100
CLAIM_DUE_ROWS = 1_000
CLAIM_SMALL_TABLE = 10_000
CLAIM_REPEATS = 15
UNFINISHED = (NotificationStatus.PENDING, NotificationStatus.SENDING)
BURST_SECONDS = 1.0  # the token bucket holds a second's worth: the first second may send twice the limit
SMS = ("sms",)
_started = time.monotonic()


def progress(message):
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


def wait_for(condition, timeout, interval=0.2):
    """Poll condition() until it holds (True) or the timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@dataclass
class Baseline:
    tasks: int
    published_per_s: float
    consumed_per_s: float
    machine_cpu_ms: float  # the whole machine's busy CPU per no-op consumed
    worker_cpu_ms: float  # the worker's (with its pool's processes) per no-op consumed


def baseline(count, redis_url, worker_pid):
    """Publish `count` no-op tasks to a queue the worker does not consume yet, then have it
    consume that queue: publishing and consuming are timed apart, and the CPU the consuming
    cost is counted."""
    counter = redis.Redis.from_url(redis_url)
    counter.delete(COUNTER_KEY)
    progress(f"baseline: publishing {count:,} no-op tasks")
    started = time.perf_counter()
    for _ in range(count):
        noop.apply_async(queue=NOOP_QUEUE)
    published = time.perf_counter()
    progress("baseline: consuming them")
    cpu_before = services.cpu_seconds_by_process(worker_pid)
    if not app.control.add_consumer(NOOP_QUEUE, reply=True):
        raise RuntimeError("the worker did not answer add_consumer")
    wait_for(lambda: int(counter.get(COUNTER_KEY) or 0) >= count, DRAIN_TIMEOUT, interval=0.02)
    consumed = time.perf_counter()
    cpu_after = services.cpu_seconds_by_process(worker_pid)
    app.control.cancel_consumer(NOOP_QUEUE, reply=True)
    done = int(counter.get(COUNTER_KEY) or 0)
    per_task_ms = {name: (cpu_after[name] - cpu_before[name]) * 1000 / max(done, 1) for name in cpu_after}
    return Baseline(
        count,
        count / (published - started),
        done / (consumed - published),
        machine_cpu_ms=per_task_ms["machine busy"],
        worker_cpu_ms=per_task_ms["worker"],
    )


@dataclass
class Bookings:
    requested: int
    booked: int
    confirmations: int  # rows planned
    sent: int
    booked_per_s: float  # bookings answered 201 / (last answer - first request)
    per_s: float  # confirmations sent / (last sent - first request)
    latencies: list  # seconds from appointment created to SMS received by the stand-in
    rate: float | None  # bookings per second offered, or None: as fast as the clients go
    cpu_ms: dict | None = None  # CPU milliseconds per booking answered, by process, when asked
    busy_percent: float | None = None  # how busy the machine's cores were meanwhile


def bookings(base_url, token, count, clients, standin, rate=None, pids=None):
    """Book one appointment for each of `count` new patients (email and SMS) through the API,
    and wait until their booking confirmations have gone out. With the worker's and the web
    server's pids, also count the CPU time each process spent, confirmations included."""
    patients = workload.patients(count)
    standin.reset()
    pace = f"at {rate:g}/s" if rate else f"by {clients} clients"
    progress(f"immediate path: {count:,} bookings {pace}")
    meter = services.CpuMeter(*pids) if pids else None
    started = time.time()
    ids = BookingClient(base_url, token).book_all(patients, clients, rate)
    answered = time.time()
    confirmations = Notification.objects.filter(appointment_id__in=ids, kind=NotificationKind.BOOKING_CONFIRMATION)
    progress(f"immediate path: {len(ids):,} booked; waiting for their confirmations")
    wait_for(lambda: not confirmations.filter(status__in=UNFINISHED).exists(), DRAIN_TIMEOUT)
    sent = confirmations.filter(status=NotificationStatus.SENT).aggregate(n=Count("pk"), last=Max("sent_at"))
    cpu_ms, busy_percent = meter.per(len(ids)) if meter and ids else (None, None)
    return Bookings(
        requested=count,
        booked=len(ids),
        confirmations=confirmations.count(),
        sent=sent["n"],
        booked_per_s=len(ids) / (answered - started),
        per_s=sent["n"] / (sent["last"].timestamp() - started) if sent["n"] else 0.0,
        latencies=sms_latencies(ids, standin),
        rate=rate,
        cpu_ms=cpu_ms,
        busy_percent=busy_percent,
    )


class BookingClient:
    """Staff booking over HTTP, from a pool of client threads."""

    def __init__(self, base_url, token):
        self.url = f"{base_url}/api/appointments/"
        self.headers = {"Authorization": f"Token {token}"}
        self.starts_at = (timezone.now() + timedelta(days=7)).isoformat()
        self.deadline = time.monotonic() + BOOKING_TIMEOUT

    def book_all(self, patients, clients, rate=None):
        """One appointment per patient, as fast as the clients go or `rate` a second (open
        loop: a slow answer does not delay the next booking). Returns the appointments' ids."""
        with ThreadPoolExecutor(clients) as pool:
            futures = []
            started = time.monotonic()
            for i, patient in enumerate(patients):
                if rate:
                    time.sleep(max(0.0, started + i / rate - time.monotonic()))
                futures.append(pool.submit(self.book, patient))
            return [pk for pk in (future.result() for future in futures) if pk]

    def book(self, patient):
        if time.monotonic() > self.deadline:
            return None
        body = {
            "patient": patient.pk,
            "provider": "Dr. Bench",
            "starts_at": self.starts_at,
            "duration_minutes": 30,
            "location": "Room 1",
            "reason": "Benchmark",
        }
        try:
            response = requests.post(self.url, json=body, headers=self.headers, timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            return None
        return response.json()["id"] if response.status_code == 201 else None


def sms_latencies(appointment_ids, standin):
    """Seconds from each appointment's creation to the stand-in receiving its SMS (every
    patient has a phone number of its own)."""
    received = {}
    for request in list(standin.requests):
        received.setdefault(request.to, request.received_at)
    created = Appointment.objects.filter(pk__in=appointment_ids).values_list("patient__phone", "created_at")
    return sorted(received[phone] - at.timestamp() for phone, at in created if phone in received)


@dataclass
class Sweep:
    rows: int
    sent: int
    per_s: float
    rounds: int
    cpu_ms: dict | None = None  # CPU milliseconds per notification sent, by process, when asked
    busy_percent: float | None = None  # how busy the machine's cores were meanwhile


def sweep(rows, concurrency, channels=workload.CHANNELS, worker_pid=None):
    """Insert `rows` due reminders and have the workers' sweeps send them all. With the
    worker's pid, also count the CPU time each process spent on them."""
    appointments = workload.appointments(min(rows, 500))
    first, last = workload.due_reminders(appointments, rows, channels)
    due = Notification.objects.filter(pk__range=(first, last))
    progress(f"sweep: {rows:,} due {'/'.join(channels)} rows, {concurrency} sweep tasks a round")
    meter = services.CpuMeter(worker_pid) if worker_pid else None
    started = time.time()
    rounds = _sweep_until_done(due, concurrency)
    sent = due.filter(status=NotificationStatus.SENT).aggregate(n=Count("pk"), last=Max("sent_at"))
    per_s = sent["n"] / (sent["last"].timestamp() - started) if sent["n"] else 0.0
    result = Sweep(rows, sent["n"], per_s, rounds)
    if meter and sent["n"]:
        result.cpu_ms, result.busy_percent = meter.per(sent["n"])
    return result


def _sweep_until_done(rows, concurrency):
    """Enqueue `concurrency` sweeps, and as many again whenever due rows are left but none is
    claimed (the sweeps stopped), until none is due or in flight. Returns the rounds."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    rounds, last, changed = 0, None, time.monotonic()
    while time.monotonic() < deadline:
        due = rows.filter(status=NotificationStatus.PENDING).count()
        claimed = rows.filter(status=NotificationStatus.SENDING).count()
        if not due and not claimed:
            break
        if (due, claimed) != last:
            last, changed = (due, claimed), time.monotonic()
        if due and not claimed and (not rounds or time.monotonic() - changed > SWEEP_STALL):
            for _ in range(concurrency):
                app.send_task("notifications.sweep_due")
            rounds, changed = rounds + 1, time.monotonic()
        time.sleep(0.2)
    return rounds


@dataclass
class HeldLimit:
    limit: float
    sweep: Sweep
    burst: int  # SMS the stand-in received in the first second
    steady_per_s: float  # the rate it received the rest at
    max_per_s: int  # the most it received in any one second after the first


def limited_sweep(rows, concurrency, limit, standin):
    """Sweep `rows` due SMS on a worker limited to `limit` sends a second, and measure the rate
    they reached the stand-in at from the times it recorded them."""
    standin.reset()
    result = sweep(rows, concurrency, SMS)
    times = sorted(request.at for request in list(standin.requests))
    return HeldLimit(limit, result, *_received_rates(times))


def _received_rates(times):
    """From sorted arrival times: how many arrived in the first second, the rate after it (first
    to last arrival), and the most in any 1-second window after it."""
    if not times:
        return 0, 0.0, 0
    burst = bisect.bisect_left(times, times[0] + BURST_SECONDS)
    steady = times[burst:]
    per_s = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 1 else 0.0
    most = max((bisect.bisect_left(steady, at + 1.0) - i for i, at in enumerate(steady)), default=0)
    return burst, per_s, most


@dataclass
class RateLimits:
    held: HeldLimit  # 6a: the limit under load
    below: Sweep  # 6b: limited far above the rate reached...
    unlimited: Sweep  # ...and not limited at all


@dataclass
class ClaimCost:
    small_rows: int
    large_rows: int
    small_ms: float
    large_ms: float


def claim_cost(large_rows, small_rows=CLAIM_SMALL_TABLE):
    """Median time of claim_due_batch(100) with `small_rows` and then `large_rows` in the
    table: CLAIM_DUE_ROWS of them due, the rest sent history."""
    workload.clear_notifications()
    workload.appointments(500)
    progress(f"claim cost: {small_rows:,} rows")
    workload.insert_rows(1, CLAIM_DUE_ROWS, NotificationStatus.PENDING)
    workload.insert_rows(CLAIM_DUE_ROWS + 1, small_rows, NotificationStatus.SENT)
    small_ms = _median_claim_ms()
    progress(f"claim cost: {large_rows:,} rows")
    workload.insert_rows(small_rows + 1, large_rows, NotificationStatus.SENT)
    large_ms = _median_claim_ms()
    return ClaimCost(small_rows, large_rows, small_ms, large_ms)


def _median_claim_ms():
    timings = []
    for _ in range(CLAIM_REPEATS):
        started = time.perf_counter()
        claimed = claim_due_batch(CLAIM_BATCH)
        timings.append(time.perf_counter() - started)
        Notification.objects.filter(pk__in=[row.pk for row in claimed]).update(
            status=NotificationStatus.PENDING, claim_token=None, claimed_at=None, attempts=0
        )
    return statistics.median(timings) * 1000
