"""What the benchmark runs against: its PostgreSQL database and Redis, the stand-in Twilio
server (in this process), and gunicorn and a Celery worker as subprocesses, each a context
manager that stops the process (and its children) on the way out."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
import kombu.exceptions
import psycopg
import redis
import requests
from django.core.management import call_command
from django.db import connection

from config.celery import app
from tests.twilio_standin import TwilioStandIn

from .options import ROOT

LOG_DIR = ROOT / "var" / "bench"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
STARTUP_TIMEOUT = 60
STOP_TIMEOUT = 30


def require_loopback(*urls):
    for url in urls:
        if urlparse(url).hostname not in LOOPBACK:
            sys.exit(f"The benchmark flushes and rewrites what it uses: give it loopback URLs, not {url}")


def prepare_database(url):
    """Create the database if it is missing, then migrate it."""
    config = dj_database_url.parse(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(f"The benchmark needs PostgreSQL, not {url}")
    with psycopg.connect(url, dbname="postgres", autocommit=True) as server:
        if not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone():
            server.execute(f'CREATE DATABASE "{config["NAME"]}"')
    call_command("migrate", interactive=False, verbosity=0)


def flush_redis(url):
    redis.Redis.from_url(url).flushdb()


def versions(redis_url):
    """PostgreSQL's and Redis's versions, for the report."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0].split()[0]
    return {"PostgreSQL": postgres, "Redis": redis.Redis.from_url(redis_url).info()["redis_version"]}


def process_env(database_url, redis_url, standin):
    """The environment of the web and worker processes: the bench database and broker, SMS
    through the real twilio client to the stand-in, email kept in memory."""
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_DEBUG="false",
        LOG_LEVEL="WARNING",
        EMAIL_BACKEND="locmem",
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=standin.account_sid,
        TWILIO_AUTH_TOKEN=standin.auth_token,
        TWILIO_API_BASE_URL=standin.base_url,
        TWILIO_PHONE_NUMBER="+15005550006",
    )


@contextlib.contextmanager
def twilio_standin():
    standin = TwilioStandIn()
    try:
        yield standin
    finally:
        standin.stop()


@contextlib.contextmanager
def web(env, workers):
    """gunicorn as deployed (sync workers) on a free loopback port; yields its base URL and
    the master's pid."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "30",
        "--log-level",
        "warning",
    ]
    with subprocess_running("web", command, env) as process:
        base_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base_url), process, "web")
        yield base_url, process.pid


@contextlib.contextmanager
def worker(env, pool, concurrency, name="worker", cwd=ROOT):
    """`celery -A config worker` with the baseline's no-op task, run from the checkout `cwd`;
    yields the process. Its log is var/bench/{name}.log."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-I",
        "bench.tasks",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "WARNING",
        "--hostname",
        f"bench-{os.getpid()}@%h",
    ]
    with subprocess_running(name, command, env, cwd) as process:
        wait_until(_answers_ping, process, name)
        yield process


@contextlib.contextmanager
def subprocess_running(name, command, env, cwd=ROOT):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG_DIR / f"{name}.log", "wb") as log:
        # Its own session, so that a process that ignores SIGTERM goes with its children.
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until(ready, process, name):
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}; see {LOG_DIR / name}.log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready after {STARTUP_TIMEOUT} s; see {LOG_DIR / name}.log")
        time.sleep(0.2)


def _answers_ping():
    # A dropped broker connection (a test elsewhere that kills Redis clients) is not an answer.
    try:
        return app.control.ping(timeout=0.5)
    except (redis.RedisError, OSError, kombu.exceptions.OperationalError):
        return False


def _healthy(base_url):
    try:
        return requests.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_bytes(pid):
    """VmHWM of a process and its descendants (the pool's children under prefork)."""
    return sum(_status_kib(p, "VmHWM") for p in [pid, *_descendants(pid)]) * 1024


class CpuMeter:
    """CPU time by process between its start and `per(count)`: milliseconds per unit of work,
    and how busy the machine's cores were meanwhile."""

    def __init__(self, worker_pid, web_pid=None):
        self.pids = (worker_pid, web_pid)
        self.before = cpu_seconds_by_process(*self.pids)

    def per(self, count):
        after = cpu_seconds_by_process(*self.pids)
        used = {name: seconds - self.before[name] for name, seconds in after.items()}
        total = used.pop("machine total")
        return {name: seconds * 1000 / count for name, seconds in used.items()}, 100 * used["machine busy"] / total


def cpu_seconds_by_process(worker_pid, web_pid=None):
    """CPU seconds (user + system) used so far by each part of the machine's work: the web
    server's processes when given, the worker and its pool's children, every PostgreSQL and
    Redis server process, and this process (the stand-in Twilio server's threads and the
    benchmark's HTTP clients and polling)."""
    groups = {
        **({"web": [web_pid, *_descendants(web_pid)]} if web_pid else {}),
        "worker": [worker_pid, *_descendants(worker_pid)],
        "PostgreSQL": [],
        "Redis": [],
        "stand-in and benchmark": [os.getpid()],
    }
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            name = stat.read_text().partition("(")[2].partition(")")[0]
            if name == "postgres":
                groups["PostgreSQL"].append(int(stat.parent.name))
            elif name == "redis-server":
                groups["Redis"].append(int(stat.parent.name))
    used = {group: sum(_cpu_seconds(pid) for pid in pids) for group, pids in groups.items()}
    return used | dict(zip(("machine busy", "machine total"), _machine_cpu_seconds(), strict=True))


def machine_busy_seconds():
    """CPU seconds the whole machine has spent busy, summed over its cores."""
    return _machine_cpu_seconds()[0]


def _machine_cpu_seconds():
    """CPU seconds the whole machine spent busy, and in all, summed over its cores (/proc/stat).
    Busy leaves out steal, the time the hypervisor gave this machine's cores to other machines."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n")[0].split()[1:9]
    )
    busy = user + nice + system + irq + softirq
    return busy / os.sysconf("SC_CLK_TCK"), (busy + idle + iowait + steal) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid):
    """A process's CPU time and that of its children that ended (PostgreSQL's backends and a
    pool's processes come and go: the parent's count keeps what they used)."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return sum(map(int, fields[11:15])) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime
    return 0.0


def _status_kib(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return 0


def _descendants(pid):
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found.extend(kids)
        todo.extend(kids)
    return found
