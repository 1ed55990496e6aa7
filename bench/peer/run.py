"""The runs in order: the single-process rounds, then the multi-process rounds; each round runs
every side once, starting one side later than the round before, so drift in the machine's load
falls on all sides alike."""

import contextlib
import functools
import os
from pathlib import Path

from bench import report as bench_report
from bench import services, workload
from bench.measure import progress
from bench.options import ROOT

from . import environment, measure, pipeline, report


def run(options):
    services.require_loopback(options.database_url, options.redis_url, options.peer_database_url)
    load_at_start = os.getloadavg()[0]
    progress(f"preparing {options.database_url} and {options.peer_database_url}; flushing {options.redis_url}")
    services.prepare_database(options.database_url)
    services.flush_redis(options.redis_url)
    count, processes = options.emails, options.processes
    ours = [measure.Ours("ours", ROOT)]
    ours += [measure.Ours(f"ours at {Path(path).name}", Path(path).resolve()) for path in options.baseline]
    with contextlib.ExitStack() as stack:
        port = services.free_port()
        sink = environment.Sink(port)
        stack.callback(sink.stop)
        peer = environment.PeerProject(options.peer_database_url, port)
        stack.callback(peer.remove)
        env = our_env(options, port)
        workload.reset()
        context = measure.peer_context()
        sends, pipelines, floor = [], [], {}
        if options.mode in ("both", "send"):
            single = [functools.partial(measure.peer_send, peer, sink, count, 1, context)]
            single += [functools.partial(measure.our_command_send, side, env, sink, count) for side in ours]
            multi = [functools.partial(measure.peer_send, peer, sink, count, processes, context)]
            multi += [functools.partial(measure.our_worker_send, side, env, sink, count, processes) for side in ours]
            sends = _rounds(options.pairs, single) + _rounds(options.pairs, multi)
            floor = measure.our_floor(port, options.floor_count)
        if options.mode in ("both", "e2e"):
            pipelines = _pipelines(options, peer, sink, env, ours, context)
    results = report.Results(options, sends, floor, (load_at_start, os.getloadavg()[0]), pipelines)
    table = "\n\n".join(filter(None, [report.table(results), report.pipeline_table(results)]))
    print(table, flush=True)
    if not options.no_output:
        bench_report.write(Path(options.output), options.section, report.section(results, table))
        progress(f"wrote section {options.section!r} of {options.output}")


def _pipelines(options, peer, sink, env, ours, context):
    """The end-to-end rounds (bench/peer/pipeline.py), one process and then P, each pair alternating."""
    count, redis_url = options.emails, options.redis_url
    runs = []
    for processes in (1, options.processes):
        sides = [functools.partial(pipeline.peer_pipeline, peer, sink, count, processes, context, redis_url)]
        if processes == 1:
            sides += [functools.partial(pipeline.our_pipeline_command, s, env, sink, count, redis_url) for s in ours]
        else:
            sides += [
                functools.partial(pipeline.our_pipeline_worker, s, env, sink, count, processes, redis_url) for s in ours
            ]
        runs += _rounds(options.pairs, sides)
    return runs


def _rounds(rounds, sides):
    sends = []
    for i in range(rounds):
        start = i % len(sides)
        sends += [side() for side in sides[start:] + sides[:start]]
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
