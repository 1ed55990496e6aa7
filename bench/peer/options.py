"""Command-line options of `python -m bench.peer`."""

import argparse
import os

import bench.peer
from bench.options import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, ROOT, command_line, django_env

DEFAULT_PEER_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/notifications_bench_peer"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.peer", description=bench.peer.__doc__)
    parser.add_argument("--emails", type=int, default=5_000, help="emails each side sends a run (default 5,000)")
    parser.add_argument(
        "--mode",
        choices=["both", "send", "e2e"],
        default="both",
        help="send: the send alone; e2e: from the emails asked for to the emails delivered; both (default)",
    )
    parser.add_argument("--pairs", type=int, default=3, help="rounds in each mode, every side once a round (default 3)")
    parser.add_argument(
        "--processes", type=int, default=4, help="processes of the multi-process mode on both sides (default 4)"
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        action="append",
        default=[],
        help="an earlier version of ours (git archive COMMIT | tar -x -C DIR), run as one more side (repeatable)",
    )
    parser.add_argument(
        "--floor-count", type=int, default=2_000, help="renders and sends of our floor, each (default 2,000)"
    )
    parser.add_argument("--output", default=ROOT / "docs" / "PERFORMANCE.md", help="the Markdown file to write")
    parser.add_argument("--no-output", action="store_true", help="print the table only")
    parser.add_argument("--section", default="Peer: django-post-office", help="the section the table goes in")
    options = parser.parse_args(argv)
    if min(options.emails, options.pairs, options.processes, options.floor_count) < 1:
        parser.error("--emails, --pairs, --processes and --floor-count must be positive")
    options.database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    options.peer_database_url = os.environ.get("BENCH_PEER_DATABASE_URL", DEFAULT_PEER_DATABASE_URL)
    options.redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    options.command = command_line(argv, "bench.peer")
    options.django_env = django_env(options.database_url, options.redis_url)
    return options
