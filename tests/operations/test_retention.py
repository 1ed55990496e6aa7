"""Retention: finished rows (sent, cancelled, skipped, dead) last touched before the cut-off are
deleted, in batches; rows still in play and young rows stay. The same purge runs as the
`purge_notifications` command and as the beat task notifications.purge_old."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from appointments.models import Appointment
from config.celery import app as celery_app
from notifications.channels import address_for
from notifications.models import Notification, NotificationAttempt
from notifications.operations import retention
from tests.conftest import wait_for

OLD_DAYS = 200
YOUNG_DAYS = 10
CUTOFF_DAYS = 180


@pytest.fixture
def appointment(make_patient):
    patient = make_patient(channels=["email", "sms"], phone="+14155550123")
    return Appointment.objects.create(
        patient=patient, provider="Dr. Ada Lovelace", starts_at=timezone.now() - timedelta(days=OLD_DAYS - 3)
    )


@pytest.fixture
def make_row(appointment):
    counter = iter(range(1, 100_000))

    def make(status, days_ago, channel="sms", **fields):
        touched = timezone.now() - timedelta(days=days_ago)
        return Notification.objects.create(
            appointment=appointment,
            patient=appointment.patient,
            kind="reminder",
            channel=channel,
            status=status,
            # Distinct times keep the planning key (appointment, kind, channel, time) unique.
            scheduled_for=touched - timedelta(minutes=next(counter)),
            recipient=address_for(appointment.patient, channel),
            updated_at=touched,
            **fields,
        )

    return make


@pytest.fixture
def rows(make_row):
    soon = timezone.now() + timedelta(minutes=10)
    return {
        "old_sent": make_row("sent", OLD_DAYS),
        "old_cancelled": make_row("cancelled", OLD_DAYS),
        "old_skipped": make_row("skipped", OLD_DAYS),
        "old_dead": make_row("failed", OLD_DAYS, last_error="Twilio 400 error 21211"),
        "old_retrying": make_row("failed", OLD_DAYS, next_attempt_at=soon),
        "old_pending": make_row("pending", OLD_DAYS),
        "old_sending": make_row("sending", OLD_DAYS),
        "young_sent": make_row("sent", YOUNG_DAYS),
        "young_dead": make_row("failed", YOUNG_DAYS),
        "young_cancelled": make_row("cancelled", YOUNG_DAYS),
    }


FINISHED_OLD = {"old_sent", "old_cancelled", "old_skipped", "old_dead"}


def remaining(rows):
    ids = set(Notification.objects.values_list("id", flat=True))
    return {name for name, row in rows.items() if row.pk in ids}


def test_purge_deletes_old_finished_rows(rows):
    retention.purge(CUTOFF_DAYS)

    assert not remaining(rows) & FINISHED_OLD


def test_purge_keeps_old_rows_still_in_play(rows):
    retention.purge(CUTOFF_DAYS)

    assert {"old_retrying", "old_pending", "old_sending"} <= remaining(rows)


def test_purge_keeps_young_finished_rows(rows):
    retention.purge(CUTOFF_DAYS)

    assert {"young_sent", "young_dead", "young_cancelled"} <= remaining(rows)


def test_purge_returns_the_number_of_rows_deleted(rows):
    assert retention.purge(CUTOFF_DAYS) == len(FINISHED_OLD)


def test_purge_deletes_the_attempt_history_of_purged_rows(rows):
    for name in ("old_sent", "young_sent"):
        NotificationAttempt.objects.create(
            notification=rows[name], number=1, finished_at=rows[name].updated_at, outcome="sent"
        )

    retention.purge(CUTOFF_DAYS)

    assert list(NotificationAttempt.objects.values_list("notification_id", flat=True)) == [rows["young_sent"].pk]


def test_purge_in_batches_deletes_more_rows_than_one_batch(make_row):
    for _ in range(10):
        make_row("sent", OLD_DAYS)
    keep = make_row("sent", YOUNG_DAYS)

    batches = list(retention.purge_in_batches(CUTOFF_DAYS, batch_size=3))

    assert batches == [3, 3, 3, 1]
    assert list(Notification.objects.values_list("id", flat=True)) == [keep.pk]


def test_command_deletes_old_finished_rows(rows):
    out = StringIO()

    call_command("purge_notifications", "--older-than-days", str(CUTOFF_DAYS), stdout=out)

    assert remaining(rows) == set(rows) - FINISHED_OLD
    assert f"deleted {len(FINISHED_OLD)} " in out.getvalue()


def test_command_dry_run_counts_and_deletes_nothing(rows):
    out = StringIO()

    call_command("purge_notifications", "--older-than-days", str(CUTOFF_DAYS), "--dry-run", stdout=out)

    assert remaining(rows) == set(rows)
    assert f"{len(FINISHED_OLD)} notification(s)" in out.getvalue()


def test_command_without_age_uses_the_retention_setting(rows, settings):
    settings.NOTIFICATIONS_RETENTION_DAYS = YOUNG_DAYS - 5

    call_command("purge_notifications", stdout=StringIO())

    assert remaining(rows) == {"old_retrying", "old_pending", "old_sending"}


@pytest.mark.parametrize("days", ["0", "-5"])
def test_command_refuses_an_age_below_one_day(rows, days):
    with pytest.raises(CommandError, match="older-than-days"):
        call_command("purge_notifications", "--older-than-days", days, stdout=StringIO())

    assert remaining(rows) == set(rows)


def test_purge_task_is_in_the_beat_schedule():
    entries = [e for e in django_settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "notifications.purge_old"]

    assert len(entries) == 1


def test_purge_task_sent_by_name_runs_on_the_worker(celery_worker, rows, settings):
    settings.NOTIFICATIONS_RETENTION_DAYS = CUTOFF_DAYS

    # As beat sends it: by the name in the schedule.
    celery_app.send_task("notifications.purge_old")

    wait_for(lambda: not Notification.objects.filter(pk__in=[rows[n].pk for n in FINISHED_OLD]).exists())
    assert remaining(rows) == set(rows) - FINISHED_OLD


def test_purge_keeps_a_pending_fallback_and_the_old_row_it_stands_in_for(make_row):
    # Staff retried an email fallback long after its SMS died: the fallback is in play again.
    dead_sms = make_row("failed", OLD_DAYS, last_error="Twilio 400 error 21211")
    fallback = make_row("pending", 0, channel="email", fallback_for=dead_sms)
    make_row("sent", OLD_DAYS)  # unrelated: still goes

    assert retention.purge(CUTOFF_DAYS) == 1

    assert set(Notification.objects.values_list("id", flat=True)) == {dead_sms.pk, fallback.pk}


def test_purge_deletes_an_old_row_together_with_its_finished_fallback(make_row):
    dead_sms = make_row("failed", OLD_DAYS, last_error="Twilio 400 error 21211")
    make_row("sent", OLD_DAYS, channel="email", fallback_for=dead_sms)

    assert retention.purge(CUTOFF_DAYS) == 2

    assert not Notification.objects.exists()


def test_a_row_retried_after_the_purge_chose_it_is_not_deleted(rows):
    """The purge reads a batch of ids, then deletes: a dead row that staff retry in between is in
    play again, and the delete re-checks that each row is still finished and old."""
    chosen = list(retention.purgeable(CUTOFF_DAYS).values_list("id", flat=True))
    assert rows["old_dead"].pk in chosen
    assert Notification.objects.filter(pk=rows["old_dead"].pk).retry() == 1

    deleted = retention.delete_still_purgeable(chosen, CUTOFF_DAYS)

    assert Notification.objects.get(pk=rows["old_dead"].pk).status == "pending"
    assert deleted == len(FINISHED_OLD) - 1
    assert remaining(rows) == set(rows) - FINISHED_OLD | {"old_dead"}
