"""The runs in order: the single-process pairs, then the multi-process pairs (our worker started
for them), each pair in the other order from the last, so drift in the machine's load falls on
both sides alike."""

import contextlib
import os

from bench import report as bench_report
from bench import services, workload
from bench.measure import progress

from . import environment, measure, report


def run(options):
    services.require_loopback(options.database_url, options.redis_url, options.peer_database_url)
    load_at_start = os.getloadavg()[0]
    progress(f"preparing {options.database_url} and {options.peer_database_url}; flushing {options.redis_url}")
    services.prepare_database(options.database_url)
    services.flush_redis(options.redis_url)
    count, processes = options.emails, options.processes
    with contextlib.ExitStack() as stack:
        port = services.free_port()
        sink = environment.Sink(port)
        stack.callback(sink.stop)
        peer = environment.PeerProject(options.peer_database_url, port)
        stack.callback(peer.remove)
        env = our_env(options, port)
        workload.reset()
        context = measure.peer_context()
        sends = _pairs(
            options.pairs,
            lambda: measure.peer_send(peer, sink, count, 1, context),
            lambda: measure.our_command_send(env, sink, count),
        )
        progress(f"starting our worker (prefork × {processes})")
        worker = stack.enter_context(services.worker(env, "prefork", processes, name="worker-peer"))
        sends += _pairs(
            options.pairs,
            lambda: measure.peer_send(peer, sink, count, processes, context),
            lambda: measure.our_worker_send(worker, sink, count, processes),
        )
    results = report.Results(options, sends, load=(load_at_start, os.getloadavg()[0]))
    table = report.table(results)
    print(table, flush=True)
    if not options.no_output:
        bench_report.write(options.output, options.section, report.section(results, table))
        progress(f"wrote section {options.section!r} of {options.output}")


def _pairs(pairs, peer_side, our_side):
    sends = []
    for i in range(pairs):
        sides = (peer_side, our_side) if i % 2 == 0 else (our_side, peer_side)
        sends += [side() for side in sides]
    return sends


def our_env(options, smtp_port):
    """Our command's and worker's environment: the bench database and broker, email over SMTP
    to the sink."""
    return dict(
        os.environ,
        **options.django_env,
        EMAIL_BACKEND="smtp",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_port),
    )
