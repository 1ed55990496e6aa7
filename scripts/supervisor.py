"""Keep a set of processes running, as docker-compose's `restart: unless-stopped` does for the
deployment: a process that exits on its own is started again after a back-off (kombu 5.7.0's
Redis transport can end a worker when Redis goes away, docs/RELIABILITY.md). SIGINT or SIGTERM
(Ctrl-C) stops them all."""

import signal
import subprocess
import sys
import time

# Seconds before the first restart, doubling up to the cap for a process that keeps exiting.
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
# A process that ran this long before exiting starts over at the first delay.
STABLE_AFTER = 60.0
# How long a process may take to stop on SIGTERM before it is killed.
STOP_TIMEOUT = 15.0


class Supervised:
    def __init__(self, name, command, cwd):
        self.name, self.command, self.cwd = name, command, cwd
        self.process = None
        self.delay = FIRST_DELAY
        self.started_at = self.restart_at = 0.0

    def start(self, now):
        self.process = subprocess.Popen(self.command, cwd=self.cwd)
        self.started_at, self.restart_at = now, 0.0
        say(f"{self.name} started (pid {self.process.pid})")

    def check(self, now):
        """Start the process again once its back-off has passed, if it has exited."""
        if self.restart_at:
            if now >= self.restart_at:
                self.start(now)
            return
        code = self.process.poll()
        if code is None:
            return
        if now - self.started_at >= STABLE_AFTER:
            self.delay = FIRST_DELAY
        say(f"{self.name} exited with code {code}; restarting it in {self.delay:g} s")
        self.restart_at = now + self.delay
        self.delay = min(self.delay * 2, MAX_DELAY)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait(self):
        if self.process is None:
            return
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def say(line):
    print(line, file=sys.stderr, flush=True)


def supervise(commands, cwd=None, started=None, poll_interval=0.5):
    """Run {name: command} until SIGINT or SIGTERM; then stop them all, the last started first,
    and return. `started` is called once every process has been started."""
    stopping = []
    previous = {sig: signal.signal(sig, lambda *_: stopping.append(True)) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [Supervised(name, command, cwd) for name, command in commands.items()]
    try:
        for supervised in processes:
            supervised.start(time.monotonic())
        if started:
            started()
        while not stopping:
            for supervised in processes:
                # Ctrl-C reaches the children too: once it has, their exits are not restarted.
                if stopping:
                    break
                supervised.check(time.monotonic())
            time.sleep(poll_interval)
    finally:
        for supervised in reversed(processes):
            supervised.stop()
        for supervised in processes:
            supervised.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
