"""`make run` keeps running: scripts/supervisor.py restarts a process that exits, after a
back-off and with a line saying so, and Ctrl-C stops every process."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
QUITTER = [sys.executable, "-c", "raise SystemExit(3)"]


class Supervisor:
    """scripts/supervisor.py running the given commands in a session of its own, as a terminal
    runs `make run` in its own process group; its stderr lines are read as they come."""

    def __init__(self, commands):
        program = f"from scripts.supervisor import supervise; supervise({commands!r}, poll_interval=0.1)"
        self.process = subprocess.Popen(
            [sys.executable, "-c", program], cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.lines = queue.Queue()
        self.seen = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern, timeout=20):
        """The next line matching pattern (a regular expression), as a match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if match := re.fullmatch(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s; saw {self.seen}")

    def every_line(self):
        """All it wrote, once it has exited."""
        self.reader.join(timeout=10)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.seen

    def started_pid(self, name):
        return int(self.expect(rf"{name} started \(pid (\d+)\)")[1])

    def ctrl_c(self):
        """What Ctrl-C in a terminal does: SIGINT to every process of the foreground group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=30)

    def terminate(self):
        """SIGTERM to the supervisor alone, as `kill` sends it."""
        self.process.terminate()
        return self.process.wait(timeout=30)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def supervisor():
    started = []

    def start(commands):
        started.append(Supervisor(commands))
        return started[-1]

    yield start
    for each in started:
        each.stop()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_process_is_restarted_with_a_line_saying_so(supervisor):
    running = supervisor({"worker": SLEEPER, "web": SLEEPER})
    worker = running.started_pid("worker")
    web = running.started_pid("web")

    os.kill(worker, signal.SIGKILL)

    running.expect(r"worker exited with code -9; restarting it in 1 s")
    restarted = running.started_pid("worker")
    assert restarted != worker and alive(restarted)
    assert alive(web)


def test_a_process_that_keeps_exiting_is_restarted_with_a_growing_back_off(supervisor):
    running = supervisor({"worker": QUITTER})

    delays = [running.expect(r"worker exited with code 3; restarting it in (\d+) s")[1] for _ in range(3)]

    assert delays == ["1", "2", "4"]


def test_ctrl_c_stops_every_process_and_restarts_none(supervisor):
    running = supervisor({"worker": SLEEPER, "web": SLEEPER, "beat": SLEEPER})
    pids = [running.started_pid(name) for name in ("worker", "web", "beat")]

    assert running.ctrl_c() == 0

    assert not any(alive(pid) for pid in pids)
    assert not any("restarting" in line for line in running.every_line())


def test_sigterm_to_the_supervisor_alone_stops_the_processes_it_started(supervisor):
    running = supervisor({"worker": SLEEPER, "web": SLEEPER})
    pids = [running.started_pid(name) for name in ("worker", "web")]

    assert running.terminate() == 0

    assert not any(alive(pid) for pid in pids)
