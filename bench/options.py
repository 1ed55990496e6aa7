"""Command-line options. --quick scales every workload down; each size can also be set alone."""

import argparse
import os
import shlex
import sys
from pathlib import Path

import bench

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/notifications_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"

SIZES = {
    # option: (full run, --quick, help)
    "noops": (20_000, 2_000, "no-op tasks of the Celery baseline"),
    "bookings": (2_000, 300, "bookings of the immediate path, sent as fast as the clients go"),
    "paced": (600, 100, "bookings of the paced immediate path"),
    "sweep_rows": (10_000, 2_000, "due rows the sweep sends"),
    "table_rows": (1_000_000, 100_000, "rows in the large table of the claim measurement"),
    "rate_limit_rows": (600, 200, "due SMS rows of each rate-limit measurement"),
    "floor_count": (2_000, 500, "renders and sends of each part of the floor"),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=bench.__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run of every measurement")
    # The worker as docker-compose deploys it: Celery's prefork pool, four processes (each
    # sending a batch's messages on NOTIFICATIONS_SEND_THREADS threads).
    parser.add_argument(
        "--pool", choices=["threads", "prefork", "solo"], default="prefork", help="worker pool (default prefork)"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="worker concurrency (default 4)")
    for name, (full, quick, text) in SIZES.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, help=f"{text} (default {full:,}; {quick:,} with --quick)"
        )
    parser.add_argument(
        "--paced-rate", type=float, default=20.0, help="bookings per second of the paced run (default 20)"
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=20.0,
        help="Twilio sends per second the worker is limited to in row 6a (default 20)",
    )
    parser.add_argument(
        "--high-rate-limit",
        type=float,
        default=10_000.0,
        help="a limit far above the achievable rate, for row 6b (default 10,000)",
    )
    parser.add_argument(
        "--skip-rate-limit", action="store_true", help="leave out rows 6a and 6b (three worker restarts)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients (default 8)")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn sync workers, as deployed (default 3)")
    parser.add_argument(
        "--output", type=Path, help="the Markdown file to write (default docs/PERFORMANCE.md; none with --quick)"
    )
    parser.add_argument(
        "--section", default="Latest run", help="the section of the output the table goes in, replaced if present"
    )
    options = parser.parse_args(argv)
    for name, (full, quick, _) in SIZES.items():
        if getattr(options, name) is None:
            setattr(options, name, quick if options.quick else full)
    if options.output is None and not options.quick:
        options.output = ROOT / "docs" / "PERFORMANCE.md"
    options.database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    options.redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    options.command = command_line(argv)
    options.django_env = django_env(options.database_url, options.redis_url)
    return options


def django_env(database_url, redis_url):
    """The benchmark process itself: the bench database and broker, no debug query log."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }


def command_line(argv, module="bench"):
    python = Path(sys.executable)
    if python.is_relative_to(ROOT):
        python = python.relative_to(ROOT)
    return shlex.join([str(python), "-m", module, *argv])
