"""The results as one Markdown table: printed, and written to a section of docs/PERFORMANCE.md."""

import datetime
import os
import platform
import re
import statistics
from dataclasses import dataclass

from .measure import CLAIM_BATCH, CLAIM_DUE_ROWS, CLAIM_REPEATS

INTRO = """# Performance

`make bench` (`python -m bench`; `--quick` for a small run, `--help` for the options) runs the
service as deployed, on this machine: gunicorn's sync workers, a `celery -A config worker`
subprocess (prefork pool, 4 processes, as in docker-compose.yml), PostgreSQL, Redis, and the
real twilio client talking to the stand-in Twilio server of `tests/twilio_standin.py` (in the
benchmark's process). Email goes to Django's locmem backend, which keeps every message in the
worker's memory (row 5 includes them); `DJANGO_DEBUG` is off. It needs PostgreSQL
(`BENCH_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/notifications_bench`, created
and migrated if missing) and Redis (`BENCH_REDIS_URL`, default `redis://127.0.0.1:6379/9`,
flushed at the start). Nothing is asserted: speed is reported, never judged. Each section
records the machine's load average: compare runs made at similar load, since other processes
on the machine take CPU from these.

The rows:

1. **Baseline**: Celery no-op tasks (each only increments a Redis counter) published to a
   queue the worker does not yet consume, then consumed by the same worker (same broker, pool
   and concurrency) as the rows below. Publishing and consuming are timed apart. The CPU the
   consuming cost (the worker's, and the whole machine's busy time) per no-op is the yardstick
   rows 2a and 3 are given against, since absolute CPU times move between machines.
2. **Immediate path**: bookings through `POST /api/appointments/` over HTTP, each for a new
   patient on email and SMS, so two booking confirmations each. Notifications/s is the
   confirmations sent divided by the time from the first request to the last `sent_at`; the
   ratio compares it with the baseline's consumed rate. Latency is the time from the
   appointment's `created_at` to the stand-in receiving its SMS. "Paced" books at a fixed rate
   instead of as fast as the clients go. The burst also gives the CPU time per booking
   answered, by process as in row 3 plus gunicorn's, its confirmations' sending included (the
   benchmark's process then also runs the HTTP clients).
3. **Sweep**: due rows inserted directly, sent by `notifications.sweep_due` tasks on the
   worker (as many at once as its concurrency, enqueued again until nothing is due); rate from
   the first enqueue to the last `sent_at`. CPU time per notification sent, from `/proc`: the
   worker with its pool's processes, every PostgreSQL and Redis server process (other
   databases' included), and the benchmark's own process, which runs the stand-in Twilio
   server; and the whole machine's busy time (steal, the time the hypervisor gave its cores to
   other machines, left out), with how busy its cores were meanwhile.
4. **Claim cost**: the median time of `notifications.outbox.sweeps.claim_due_batch(100)`, run in the
   benchmark's process with the worker stopped, in a table of mostly sent history, small and
   then large (the claimed rows are put back between claims).
5. **Worker memory**: the worker's peak resident set (`VmHWM`, summed over its processes)
   after rows 1 to 3.
6. **Rate limit**: due SMS rows swept as in row 3, each time by a worker started afresh with its
   `TWILIO_MAX_SENDS_PER_SECOND` (read at start; `--skip-rate-limit` leaves these rows out).
   "Under load" sets a limit below what the sweep reaches and reads the rate from the times the
   stand-in received the SMS: from the end of the first second (the token bucket lets one
   second's worth through at once) to the last, and the most in any 1-second window after the
   first, each as a deviation from the limit. "Not reached" sweeps the same number of rows with
   a limit far above the rate reached and with none, each rated as row 3, and gives their ratio.
7. **Floor**: what the parts no notification can do without cost alone, in the benchmark's
   process right after row 1, the worker idle (`bench/floor.py`): a reminder rendered from its
   templates, and sent as a send thread sends it, by email to the locmem backend and by SMS
   through the real twilio client to the stand-in (both ends of that exchange, and the kernel
   between, are on this machine); the machine's busy time per part, and their mean over a
   notification half email and half SMS against the no-op's. What row 3 spends beyond it is the claim, the
   current-state read, the outcome write, PostgreSQL and Celery.
"""


@dataclass
class Run:
    options: object
    baseline: object
    burst: object
    paced: object
    sweep: object
    claims: object
    peak_rss: int
    rate_limits: object  # None with --skip-rate-limit
    floor: object
    versions: dict
    load: tuple  # the 1-minute load average at the start and at the end


def table(run):
    options, baseline = run.options, run.baseline
    rows = [
        ("Measurement", "Workload", "Result"),
        (
            "1. Baseline: Celery no-op tasks",
            f"{baseline.tasks:,} tasks; worker pool {options.pool} × {options.concurrency}",
            (
                f"published {baseline.published_per_s:,.0f}/s; consumed {baseline.consumed_per_s:,.0f}/s; "
                f"CPU ms per no-op consumed: worker {baseline.worker_cpu_ms:.2f}, "
                f"the whole machine {baseline.machine_cpu_ms:.2f}"
            ),
        ),
        _bookings_row("2a. Immediate path, burst", run.burst, baseline, options),
        _bookings_row("2b. Immediate path, paced", run.paced, baseline, options),
        (
            "3. Sweep path",
            f"{run.sweep.rows:,} due rows, half email, half SMS; {options.concurrency} sweep tasks a round",
            (
                f"{run.sweep.per_s:,.0f} notifications/s ({run.sweep.per_s / baseline.consumed_per_s:.2f}× baseline)"
                f"{_shortfall(run.sweep.sent, run.sweep.rows)}; {run.sweep.rounds} round(s); "
                f"CPU ms per notification: {_cpu(run.sweep)}; "
                f"machine CPU per notification {run.sweep.cpu_ms['machine busy'] / baseline.machine_cpu_ms:.2f}× "
                f"a no-op's"
            ),
        ),
        (
            f"4. Claim cost: claim_due_batch({CLAIM_BATCH})",
            f"median of {CLAIM_REPEATS} claims; {CLAIM_DUE_ROWS:,} rows due, the rest sent history",
            (
                f"{run.claims.small_rows:,} rows: {run.claims.small_ms:,.1f} ms; "
                f"{run.claims.large_rows:,} rows: {run.claims.large_ms:,.1f} ms; "
                f"ratio {run.claims.large_ms / run.claims.small_ms:,.1f}×"
            ),
        ),
        (
            "5. Worker memory",
            f"peak RSS (VmHWM) of the worker after rows 1–3 ({options.pool} pool)",
            f"{run.peak_rss / 2**20:,.0f} MiB",
        ),
    ]
    if run.rate_limits:
        rows += _rate_limit_rows(run.rate_limits, options)
    rows.append(_floor_row(run.floor, baseline, run.sweep))
    return _markdown(rows)


def _floor_row(floor, baseline, sweep):
    parts = ", ".join(f"{part} {ms:.2f}" for part, ms in floor.machine_ms.items())
    return (
        "7. Floor: a notification's sends and renders alone",
        f"{floor.count:,} of each part in the benchmark's process after row 1, the worker idle",
        (
            f"machine CPU ms: {parts}; a notification, half email and half SMS, {floor.per_notification_ms:.2f} ms, "
            f"{floor.per_notification_ms / baseline.machine_cpu_ms:.2f}× a no-op's "
            f"(row 3: {sweep.cpu_ms['machine busy'] / baseline.machine_cpu_ms:.2f}×)"
        ),
    )


def _rate_limit_rows(limits, options):
    held, below, unlimited = limits.held, limits.below, limits.unlimited
    return [
        (
            "6a. Rate limit, under load",
            f"{held.sweep.rows:,} due SMS rows; worker limited to {held.limit:g}/s; {options.concurrency} sweep tasks a round",
            (
                f"after the first second {held.steady_per_s:,.1f}/s ({_deviation(held.steady_per_s, held.limit)}), "
                f"at most {held.max_per_s:,} in any 1 s ({_deviation(held.max_per_s, held.limit)}); "
                f"{held.burst:,} in the first second{_shortfall(held.sweep.sent, held.sweep.rows)}; {held.sweep.rounds} round(s)"
            ),
        ),
        (
            "6b. Rate limit, not reached",
            f"{below.rows:,} due SMS rows; worker limited to {options.high_rate_limit:,g}/s, then unlimited",
            (
                f"limited {below.per_s:,.0f} notifications/s{_shortfall(below.sent, below.rows)}, "
                f"unlimited {unlimited.per_s:,.0f}/s{_shortfall(unlimited.sent, unlimited.rows)}; "
                f"ratio {below.per_s / unlimited.per_s:.2f}×"
            ),
        ),
    ]


def _cpu(result):
    """CPU time per unit of work by process, and how busy the whole machine was meanwhile."""
    by_process = {name: ms for name, ms in result.cpu_ms.items() if name != "machine busy"}
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in by_process.items())
    return (
        f"{parts}; the whole machine {result.cpu_ms['machine busy']:.2f} ms, "
        f"its {os.cpu_count()} cores {result.busy_percent:.0f} % busy"
    )


def _deviation(rate, limit):
    return f"{(rate - limit) / limit * 100:+.1f} % vs the limit"


def _bookings_row(name, result, baseline, options):
    offered = f"at {result.rate:g}/s" if result.rate else f"by {options.clients} clients"
    shortfall = _shortfall(result.booked, result.requested, "bookings") + _shortfall(result.sent, result.confirmations)
    return (
        name,
        f"{result.requested:,} bookings over HTTP {offered} → {result.confirmations:,} confirmations",
        (
            f"{result.per_s:,.0f} notifications/s ({result.per_s / baseline.consumed_per_s:.2f}× baseline){shortfall}; "
            f"SMS latency {_percentiles(result.latencies)}; bookings answered at {result.booked_per_s:,.1f}/s "
            f"({result.booked_per_s / baseline.consumed_per_s:.3f}× the no-ops consumed a second)"
            + (f"; CPU ms per booking: {_cpu(result)}" if result.cpu_ms else "")
        ),
    )


def _shortfall(done, expected, what="sent"):
    return "" if done == expected else f" (only {done:,} of {expected:,} {what})"


def _percentiles(seconds):
    if len(seconds) < 2:
        return "n/a"
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return ", ".join(f"p{p} {cuts[p - 1] * 1000:,.0f} ms" for p in (50, 95, 99))


def _markdown(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in rows
    ]
    lines.insert(1, "| " + " | ".join("-" * width for width in widths) + " |")
    return "\n".join(lines)


def section(run, table_text):
    software = ", ".join(f"{name} {version}" for name, version in run.versions.items())
    return (
        f"- Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, {software}\n"
        f"- Load average (1 min): {run.load[0]:.1f} at the start, {run.load[1]:.1f} at the end\n"
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- Command: `{run.options.command}`\n\n"
        f"{table_text}\n"
    )


def write(path, title, body):
    """Put `body` under `## title` in the file: replacing that section if present, appended
    otherwise; the rest of the file is kept."""
    text = path.read_text() if path.exists() else INTRO
    heading = f"## {title}\n"
    new = f"{heading}\n{body.strip()}\n"
    parts = [part.rstrip() + "\n" for part in re.split(r"(?m)^(?=## )", text)]
    if any(part.startswith(heading) for part in parts):
        parts = [new if part.startswith(heading) else part for part in parts]
    else:
        parts.append(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
