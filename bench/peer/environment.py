"""The peer's side of the benchmark: its virtualenv, its Django project in a temporary
directory, and the SMTP sink both sides send to (run by the peer's virtualenv, which has
aiosmtpd)."""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import psycopg

from bench.options import ROOT

VENV = ROOT / "var" / "bench" / "peer-venv"
PROJECT_FILES = Path(__file__).parent / "postoffice"
# The peer as a user would install it, beside the Django and psycopg versions we run on.
PACKAGES = ["django-post-office==3.12.0", "Django==5.2.19", "psycopg[binary]==3.3.9", "aiosmtpd==1.4.6"]
TEMPLATES = {"subject": "{kind}_subject.txt", "content": "{kind}.txt", "html_content": "{kind}.html"}


def python():
    """The peer virtualenv's interpreter, made and filled on first use (or when PACKAGES change)."""
    marker = VENV / "installed.txt"
    wanted = "\n".join(PACKAGES)
    if not marker.exists() or marker.read_text() != wanted:
        print(f"[bench] making {VENV} with {', '.join(PACKAGES)}", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
        subprocess.run([VENV / "bin" / "pip", "install", "--quiet", *PACKAGES], check=True)
        marker.write_text(wanted)
    return VENV / "bin" / "python"


class PeerProject:
    """post-office's Django project in a temporary directory, with the environment its commands
    run in."""

    def __init__(self, database_url, smtp_port):
        self.python = python()
        self.directory = Path(tempfile.mkdtemp(prefix="bench-peer-"))
        for name in ("peer_settings.py", "queue_emails.py", "ask_emails.py"):
            shutil.copy(PROJECT_FILES / name, self.directory)
        url = urlparse(database_url)
        _create_database(database_url, url.path.lstrip("/"))
        self.env = dict(
            os.environ,
            PYTHONPATH=str(self.directory),
            DJANGO_SETTINGS_MODULE="peer_settings",
            PEER_DB_NAME=url.path.lstrip("/"),
            PEER_DB_USER=url.username or "postgres",
            PEER_DB_HOST=url.hostname,
            PEER_DB_PORT=str(url.port or 5432),
            PEER_TEMPLATES_DIR=str(ROOT / "templates"),
            PEER_SMTP_PORT=str(smtp_port),
        )

    def queue(self, count, context, kind="reminder"):
        """Queue `count` emails of our message `kind` (rendered now, as post-office does) on an
        empty queue; with 0, the empty queue and the message's EmailTemplate alone."""
        templates = {
            field: (ROOT / "templates" / "email" / name.format(kind=kind)).read_text()
            for field, name in TEMPLATES.items()
        }
        templates["subject"] = templates["subject"].strip()  # a header: no trailing newline
        subprocess.run(
            [self.python, self.directory / "queue_emails.py", str(count), json.dumps(context), kind],
            input=json.dumps(templates),
            text=True,
            env=self.env,
            cwd=self.directory,
            check=True,
        )

    def ask_command(self, first, count, context, kind):
        """Ask for emails peer{first}… one mail.send each (ask_emails.py), on a queue prepared by
        queue(0, context, kind)."""
        return [self.python, self.directory / "ask_emails.py", str(first), str(count), json.dumps(context), kind]

    def send_command(self, processes):
        lockfile = self.directory / "post_office"
        return [self.python, "-m", "django", "send_queued_mail", "--processes", str(processes), "--lockfile", lockfile]

    def remove(self):
        shutil.rmtree(self.directory, ignore_errors=True)


def _create_database(url, name):
    with psycopg.connect(url, dbname="postgres", autocommit=True) as server:
        if not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            server.execute(f'CREATE DATABASE "{name}"')


class Sink:
    """The counting SMTP sink, a subprocess of the peer's virtualenv, talked to over its pipes."""

    def __init__(self, port):
        self.port = port
        self.process = subprocess.Popen(
            [python(), PROJECT_FILES / "sink.py", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")

    def _ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def reset(self):
        self._ask("reset")

    def stats(self):
        return json.loads(self._ask("stats"))

    def recipients(self):
        return json.loads(self._ask("recipients"))["recipients"]

    def stop(self):
        self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
