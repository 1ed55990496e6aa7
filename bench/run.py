"""The measurements in order, with the stand-in, the worker and the web server started before
and stopped after (in finally blocks) whatever happens."""
import contextlib
import os

from . import measure, report, services, workload
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
        base_url = stack.enter_context(services.web(env, options.web_workers))
        baseline = measure.baseline(options.noops, options.redis_url)
        burst = measure.bookings(base_url, token, options.bookings, options.clients, standin)
        paced = measure.bookings(base_url, token, options.paced, options.clients, standin, rate=options.paced_rate)
        sweep = measure.sweep(options.sweep_rows, options.concurrency)
        peak_rss = services.peak_rss_bytes(worker.pid)
        progress("stopping the worker and gunicorn")
    # With the worker stopped, so that nothing else claims or competes for the CPU.
    claims = measure.claim_cost(options.table_rows)
    results = report.Run(
        options, baseline, burst, paced, sweep, claims, peak_rss,
        versions=services.versions(options.redis_url),
        load=(load_at_start, os.getloadavg()[0]),
    )
    table = report.table(results)
    print(table, flush=True)
    if options.output:
        report.write(options.output, options.section, report.section(results, table))
        progress(f"wrote section {options.section!r} of {options.output}")
