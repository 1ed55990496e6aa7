"""Flower, which shows every task's arguments and can stop workers, refuses to start without a
password when DJANGO_DEBUG is off, as compose starts it (with the project's flowerconfig.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.flower import basic_auth_problem

ROOT = Path(__file__).resolve().parents[2]


def start_flower(**env):
    """Flower as compose starts it, on a port of its own; its exit code and stderr, or None for
    both when it was still serving after a minute (it was killed)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLOWER_"))} | env
    command = [sys.executable, "-m", "celery", "-A", "config", "flower", "--conf=flowerconfig.py", "--port=0"]
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return None, None
    return process.returncode, stderr


@pytest.mark.parametrize("basic_auth", ["", "ops:", ":secret"])
def test_flower_refuses_to_start_without_a_password_when_debug_is_off(basic_auth):
    code, stderr = start_flower(DJANGO_DEBUG="false", FLOWER_BASIC_AUTH=basic_auth)

    assert code not in (0, None)
    assert "FLOWER_BASIC_AUTH" in stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("entries", "oauth", "refused"),
    [
        (None, "", True),
        ([""], "", True),
        (["ops:"], "", True),
        (["ops:s3cret"], "", False),
        (["ops:s3cret", "audit:"], "", True),
        (None, ".*@clinic\\.example", False),
    ],
)
def test_a_login_needs_a_user_and_a_password_or_oauth(entries, oauth, refused):
    assert (basic_auth_problem(entries, oauth) is not None) is refused
