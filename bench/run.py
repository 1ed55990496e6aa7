"""The measurements in order, with the stand-in, the worker and the web server started before
and stopped after (in finally blocks) whatever happens."""

import contextlib
import os

from . import floor, measure, report, services, workload
from .measure import progress


def run(options):
    services.require_loopback(options.database_url, options.redis_url)
    load_at_start = os.getloadavg()[0]
    progress(f"preparing {options.database_url} and flushing {options.redis_url}")
    services.prepare_database(options.database_url)
    services.flush_redis(options.redis_url)
    workload.reset()
    token = workload.staff_token()
    with contextlib.ExitStack() as stack:
        standin = stack.enter_context(services.twilio_standin())
        env = services.process_env(options.database_url, options.redis_url, standin)
        progress(f"starting the worker ({options.pool} × {options.concurrency}) and gunicorn")
        worker = stack.enter_context(services.worker(env, options.pool, options.concurrency))
        base_url, web_pid = stack.enter_context(services.web(env, options.web_workers))
        baseline = measure.baseline(options.noops, options.redis_url, worker.pid)
        # Right after the no-ops, which it is given against, with the worker idle.
        floors = floor.floor(options.floor_count, standin)
        burst = measure.bookings(
            base_url, token, options.bookings, options.clients, standin, pids=(worker.pid, web_pid)
        )
        paced = measure.bookings(base_url, token, options.paced, options.clients, standin, rate=options.paced_rate)
        sweep = measure.sweep(options.sweep_rows, options.concurrency, worker_pid=worker.pid)
        peak_rss = services.peak_rss_bytes(worker.pid)
        progress("stopping the worker and gunicorn")
    rate_limits = None if options.skip_rate_limit else measure_rate_limits(options)
    # With the worker stopped, so that nothing else claims or competes for the CPU.
    claims = measure.claim_cost(options.table_rows)
    results = report.Run(
        options,
        baseline,
        burst,
        paced,
        sweep,
        claims,
        peak_rss,
        rate_limits,
        floors,
        versions=services.versions(options.redis_url),
        load=(load_at_start, os.getloadavg()[0]),
    )
    table = report.table(results)
    print(table, flush=True)
    if options.output:
        report.write(options.output, options.section, report.section(results, table))
        progress(f"wrote section {options.section!r} of {options.output}")


def measure_rate_limits(options):
    """Rows 6a and 6b, each on a worker of its own (the limit is read when it starts), from an
    empty notifications table so that only their rows are due."""
    workload.clear_notifications()
    rows, concurrency = options.rate_limit_rows, options.concurrency
    with services.twilio_standin() as standin:
        env = services.process_env(options.database_url, options.redis_url, standin)
        with _limited_worker(env, options, options.rate_limit):
            held = measure.limited_sweep(rows, concurrency, options.rate_limit, standin)
        with _limited_worker(env, options, options.high_rate_limit):
            below = measure.sweep(rows, concurrency, measure.SMS)
        with _limited_worker(env, options, 0):
            unlimited = measure.sweep(rows, concurrency, measure.SMS)
    return measure.RateLimits(held, below, unlimited)


def _limited_worker(env, options, limit):
    progress(f"starting a worker with TWILIO_MAX_SENDS_PER_SECOND={limit:g}")
    limited = dict(env, TWILIO_MAX_SENDS_PER_SECOND=f"{limit:g}")
    return services.worker(limited, options.pool, options.concurrency, name=f"worker-twilio-{limit:g}")
