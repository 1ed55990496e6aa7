"""The seed's commands: process_pending_notifications runs the sweep in this process, and
check_pending_notifications reports the queue."""

import json
import math
import os
import re
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.utils import timezone

from notifications.models import Notification, NotificationAttempt

REPORT = re.compile(r"^sent=(\d+) failed=(\d+) skipped=(\d+) left=(\d+)$")


def run(command, *args):
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue().strip()


def confirmations():
    return Notification.objects.filter(kind="booking_confirmation")


@pytest.fixture
def sms_patients(db, make_patient):
    def make(count):
        return [make_patient(channels=["sms"], phone=f"+1415700{i:04d}") for i in range(count)]

    return make


# process_pending_notifications


def test_process_sends_due_pending_rows_and_reports_counts(sms_patients, book, twilio):
    for patient in sms_patients(3):
        book(patient)

    output = run("process_pending_notifications")

    assert output == "sent=3 failed=0 skipped=0 left=0"
    assert set(confirmations().values_list("status", flat=True)) == {"sent"}
    assert len(twilio.requests) == 3
    # Reminders are not due yet and stay pending.
    assert set(Notification.objects.filter(kind="reminder").values_list("status", flat=True)) == {"pending"}


def test_process_reports_failed_and_skipped_rows(db, make_patient, book, twilio):
    book(make_patient(channels=["sms"], phone="+14155550160"))
    book(make_patient(channels=["sms"], phone="+15005550001", email=""))  # 21211, no email fallback
    opted_out = make_patient(channels=["sms"], phone="+14155550161")
    book(opted_out)
    opted_out.opted_out = ["sms"]  # after planning: decided at send time
    opted_out.save()

    assert run("process_pending_notifications") == "sent=1 failed=1 skipped=1 left=0"


def test_process_dry_run_lists_due_rows_and_writes_nothing(sms_patients, book, twilio):
    for patient in sms_patients(2):
        book(patient)
    due = list(confirmations().order_by("scheduled_for", "id"))

    output = run("process_pending_notifications", "--dry-run")

    lines = output.splitlines()
    assert [line.split()[2] for line in lines[:-1]] == [f"#{row.pk}" for row in due]
    assert all(line.startswith("would send #") and "booking_confirmation by sms" in line for line in lines[:-1])
    assert lines[-1] == "dry run: 2 notification(s) due; nothing sent"
    assert list(confirmations().values_list("status", "attempts", "claim_token")) == [("pending", 0, None)] * 2
    assert twilio.requests == []
    assert not NotificationAttempt.objects.exists()


def test_process_max_handles_at_most_n_rows_and_reports_the_rest_left(sms_patients, book, twilio):
    for patient in sms_patients(5):
        book(patient)

    output = run("process_pending_notifications", "--max", "2")

    assert output == "sent=2 failed=0 skipped=0 left=3"
    assert confirmations().filter(status="sent").count() == 2
    assert confirmations().filter(status="pending").count() == 3
    assert len(twilio.requests) == 2
    # Oldest first.
    oldest = list(confirmations().order_by("scheduled_for", "id")[:2])
    assert all(row.status == "sent" for row in oldest)


def test_process_max_zero_is_refused(db):
    with pytest.raises(CommandError, match="--max"):
        call_command("process_pending_notifications", "--max", "0", stdout=StringIO())


@pytest.fixture
def failed_row_due_for_retry(db, make_patient, book, twilio):
    """A confirmation whose first send got a 503 and whose backoff has passed."""
    patient = make_patient(channels=["sms"], phone="+14155550162")
    twilio.script(patient.phone, 503)
    row = book(patient).notifications.get(kind="booking_confirmation")
    assert run("process_pending_notifications") == "sent=0 failed=1 skipped=0 left=0"
    row.refresh_from_db()
    assert row.status == "failed" and row.next_attempt_at is not None
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    return row


def test_process_without_retry_failed_leaves_due_failed_rows(failed_row_due_for_retry, twilio):
    assert run("process_pending_notifications") == "sent=0 failed=0 skipped=0 left=0"
    failed_row_due_for_retry.refresh_from_db()
    assert failed_row_due_for_retry.status == "failed"
    assert failed_row_due_for_retry.attempts == 1
    assert len(twilio.requests) == 1


def test_process_with_retry_failed_retries_due_failed_rows(failed_row_due_for_retry, twilio):
    assert run("process_pending_notifications", "--retry-failed") == "sent=1 failed=0 skipped=0 left=0"
    failed_row_due_for_retry.refresh_from_db()
    assert failed_row_due_for_retry.status == "sent"
    assert failed_row_due_for_retry.attempts == 2
    assert len(twilio.requests) == 2


def test_process_dry_run_with_retry_failed_lists_due_failed_rows(failed_row_due_for_retry):
    output = run("process_pending_notifications", "--dry-run", "--retry-failed")
    assert f"would send #{failed_row_due_for_retry.pk} " in output
    assert "(status failed" in output
    assert output.endswith("dry run: 1 notification(s) due; nothing sent")
    assert "nothing sent" in run("process_pending_notifications", "--dry-run")
    assert f"#{failed_row_due_for_retry.pk} " not in run("process_pending_notifications", "--dry-run")


def test_process_starts_without_importing_what_it_does_not_use():
    """Cron starts the command every minute: a run with no text message to send and no rate limit
    set does not spend its start-up importing the twilio client, redis, icalendar or the API's
    serializers."""
    script = (
        "import sys, django; django.setup(); "
        "from django.core.management import load_command_class; "
        "load_command_class('notifications', 'process_pending_notifications'); "
        "print(sorted(name for name in ('twilio', 'redis', 'icalendar', 'rest_framework.serializers') if name in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SMS_BACKEND": "twilio"}
    started = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "[]"


# check_pending_notifications

OLDEST_DUE_AGE = 600


@pytest.fixture
def known_queue(db, make_patient, book):
    """Rows in known states (each booking plans a confirmation and reminders per channel):

    A (email, sms): confirmations due 600 s and 300 s ago; reminders email 1 (2 days), sms 2.
    B (email, sms): email confirmation sent; sms confirmation failed, retry due 60 s ago;
                    reminders email 1, sms 2.
    """
    now = timezone.now()
    a = book(make_patient(channels=["email", "sms"]))
    b = book(make_patient(channels=["email", "sms"]))
    a.notifications.filter(kind="booking_confirmation", channel="email").update(
        scheduled_for=now - timedelta(seconds=OLDEST_DUE_AGE)
    )
    a.notifications.filter(kind="booking_confirmation", channel="sms").update(
        scheduled_for=now - timedelta(seconds=300)
    )
    b.notifications.filter(kind="booking_confirmation", channel="email").update(status="sent", sent_at=now)
    b.notifications.filter(kind="booking_confirmation", channel="sms").update(
        status="failed", attempts=1, next_attempt_at=now - timedelta(seconds=60)
    )
    return {
        "made_at": now,
        "pending": {"email": 3, "sms": 5},
        "sent": {"email": 1},
        "failed": {"sms": 1},
        "due": 3,
    }


def test_check_prints_counts_by_status_and_channel(known_queue):
    lines = run("check_pending_notifications").splitlines()
    header = lines[0].split()
    assert header[0] == "status" and header[-1] == "total"
    channels = header[1:-1]
    assert set(channels) == {"email", "sms", "whatsapp", "in_app"}
    table = {}
    for line in lines[1:7]:
        status, *cells, total = line.split()
        table[status] = dict(zip(channels, map(int, cells), strict=True))
        assert int(total) == sum(table[status].values())
    for status in ("pending", "sending", "sent", "failed", "cancelled", "skipped"):
        expected = known_queue.get(status, {})
        assert {c: n for c, n in table[status].items() if n} == expected, status


def oldest_due_age_by_now(queue):
    """The oldest row's age now, in whole seconds rounded up: the most the command can have
    seen, however long the machine took to run it (no slack guessed)."""
    return OLDEST_DUE_AGE + math.ceil((timezone.now() - queue["made_at"]).total_seconds())


def test_check_prints_due_count_and_oldest_due_age(known_queue):
    last = run("check_pending_notifications").splitlines()[-1]
    match = re.fullmatch(r"due now: (\d+); oldest due: (\d+)s ago", last)
    assert match, last
    assert int(match[1]) == known_queue["due"]
    assert OLDEST_DUE_AGE <= int(match[2]) <= oldest_due_age_by_now(known_queue)


def test_check_json_numbers_match_the_rows(known_queue):
    summary = json.loads(run("check_pending_notifications", "--json"))
    assert {s: c for s, c in summary["by_status"].items() if c} == {
        s: known_queue[s] for s in ("pending", "sent", "failed")
    }
    assert summary["by_status"]["sending"] == {}
    assert summary["due"] == known_queue["due"]
    assert OLDEST_DUE_AGE <= summary["oldest_due_age_seconds"] <= oldest_due_age_by_now(known_queue)
    assert set(summary["channels"]) == {"email", "sms", "whatsapp", "in_app"}


def test_check_on_an_empty_queue_reports_no_due_rows(db):
    assert run("check_pending_notifications").splitlines()[-1] == "due now: 0; oldest due: none"
    summary = json.loads(run("check_pending_notifications", "--json"))
    assert summary["due"] == 0
    assert summary["oldest_due_age_seconds"] is None


def test_process_first_returns_rows_whose_lease_expired(db, make_patient, book, twilio, settings):
    """On a host without beat, a run that crashed leaves its rows `sending`: the next run
    reclaims them before it sweeps."""
    book(make_patient(channels=["sms"], phone="+14155550162"))
    [abandoned] = confirmations().claim()  # the crashed run's claim
    Notification.objects.filter(pk=abandoned.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS + 1)
    )

    assert run("process_pending_notifications") == "sent=1 failed=0 skipped=0 left=0"
    assert confirmations().get().status == "sent"
    assert len(twilio.accepted) == 1


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the check is about SQLite's library")
def test_check_refuses_an_sqlite_without_returning_or_update_from(monkeypatch):
    monkeypatch.setattr(connection.Database, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(connection.Database, "sqlite_version", "3.34.1")

    with pytest.raises(SystemCheckError, match=r"notifications\.E004.*SQLite 3\.34\.1; notifications needs 3\.35"):
        call_command("check")


def test_check_passes_this_machine_s_database():
    assert "notifications.E004" not in {message.id for message in checks.run_checks()}


def test_check_refuses_a_contact_channel_no_channel_sends(monkeypatch):
    from notifications import channels

    monkeypatch.setattr(channels, "CHANNEL_NAMES", ("email", "sms", "in_app"))

    with pytest.raises(SystemCheckError, match=r"notifications\.E010.*whatsapp"):
        call_command("check")


def test_every_contact_channel_has_a_channel_here():
    assert "notifications.E010" not in {message.id for message in checks.run_checks()}
