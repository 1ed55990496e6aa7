"""The beat schedule is configuration: django_celery_beat's DatabaseScheduler copies it into
its tables, and a real `celery -A config beat` drives the sweep that replaced cron."""

import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from kombu.utils.imports import symbol_by_name

from config.celery import app
from notifications.models import Notification
from tests.conftest import TEST_REDIS_URL, settled, wait_for

ROOT = Path(django_settings.BASE_DIR)


@pytest.fixture
def start_beat(transactional_db):
    """Start the configured scheduler as beat does; each call is beat starting (again)."""
    # transactional_db: the scheduler calls close_old_connections(), which closes a connection
    # it finds inside a transaction, as the plain `db` fixture's test would be.
    started = []

    def start():
        started.append(symbol_by_name(app.conf.beat_scheduler)(app=app))
        return started[-1]

    yield start
    for scheduler in started:
        scheduler._finalize.cancel()  # its exit hook would sync to a database long gone


@pytest.fixture
def scheduler(start_beat):
    return start_beat()


def test_scheduler_installs_the_sweep_every_sweep_interval(scheduler, settings):
    task = PeriodicTask.objects.get(name="sweep-due-notifications")
    assert task.task == "notifications.sweep_due"
    assert task.enabled
    assert task.interval.period == "seconds"
    assert task.interval.every == settings.NOTIFICATIONS_SWEEP_INTERVAL


def test_scheduler_installs_the_lease_reclaim(scheduler, settings):
    task = PeriodicTask.objects.get(name="reclaim-expired-leases")
    assert task.task == "notifications.reclaim_expired_leases"
    assert task.enabled
    assert task.interval.period == "seconds"
    assert task.interval.every == max(10, settings.NOTIFICATIONS_LEASE_SECONDS / 5)


def test_an_operators_change_to_the_sweep_interval_survives_beat_restarting(start_beat):
    start_beat()
    sweep = PeriodicTask.objects.get(name="sweep-due-notifications")
    sweep.interval.every = 300  # as the admin's change form saves it
    sweep.interval.save()

    start_beat()

    assert PeriodicTask.objects.get(name="sweep-due-notifications").interval.every == 300


def test_an_operator_who_disables_a_task_finds_it_disabled_after_a_restart(start_beat):
    start_beat()
    PeriodicTask.objects.filter(name="staff-failure-digest").update(enabled=False)

    start_beat()

    assert not PeriodicTask.objects.get(name="staff-failure-digest").enabled


def test_each_periodic_task_has_a_schedule_record_of_its_own(scheduler, settings):
    # With the defaults the sweep and the lease reclaim both run every 60 s.
    assert settings.NOTIFICATIONS_SWEEP_INTERVAL == max(10, settings.NOTIFICATIONS_LEASE_SECONDS / 5)
    sweep = PeriodicTask.objects.get(name="sweep-due-notifications")
    reclaim = PeriodicTask.objects.get(name="reclaim-expired-leases")
    assert sweep.interval_id != reclaim.interval_id
    sweep.interval.every = 120
    sweep.interval.save()
    assert IntervalSchedule.objects.get(pk=reclaim.interval_id).every == 60


def test_an_entry_deleted_by_an_operator_is_seeded_again_at_the_next_start(start_beat):
    start_beat()
    PeriodicTask.objects.filter(name="purge-old-notifications").delete()

    start_beat()

    assert PeriodicTask.objects.get(name="purge-old-notifications").task == "notifications.purge_old"


def test_scheduled_tasks_are_registered_with_the_app(scheduler):
    app.loader.import_default_modules()
    for name in ("sweep-due-notifications", "reclaim-expired-leases"):
        assert PeriodicTask.objects.get(name=name).task in app.tasks


def database_url():
    """The test database, as a DATABASE_URL another process can use."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    assert connection.vendor == "postgresql"
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}{'@' if credentials else ''}{host}{port}/{quote(db['NAME'], safe='')}"


def test_real_beat_schedules_the_sweep_that_sends_a_due_reminder(celery_worker, make_patient, book, twilio):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("an in-memory SQLite test database cannot be shared with a beat process")
    patient = make_patient(channels=["sms"], phone="+14155550170")
    appointment = book(patient)
    settled(appointment.notifications.filter(kind="booking_confirmation"))
    reminder = appointment.notifications.get(kind="reminder", scheduled_for=appointment.starts_at - timedelta(hours=2))
    Notification.objects.filter(pk=reminder.pk).update(scheduled_for=timezone.now() - timedelta(seconds=1))

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": TEST_REDIS_URL,
        "NOTIFICATIONS_SWEEP_INTERVAL": "1",
        "PYTHONUNBUFFERED": "1",
    }
    with tempfile.TemporaryFile(mode="w+") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_for(lambda: Notification.objects.get(pk=reminder.pk).status == "sent", timeout=45)
            except AssertionError:
                log.seek(0)
                pytest.fail(f"beat's sweep did not send the reminder; beat said:\n{log.read()[-4000:]}")
        finally:
            beat.terminate()
            try:
                beat.wait(timeout=15)
            except subprocess.TimeoutExpired:
                beat.kill()
                beat.wait()
        log.seek(0)
        output = log.read()

    assert "Scheduler: Sending due task sweep-due-notifications (notifications.sweep_due)" in output
    assert len([r for r in twilio.sent_to(patient.phone) if "reminder" in r.body]) == 1
    # Beat read its schedule, at the interval it was given, from the test database.
    assert PeriodicTask.objects.get(name="sweep-due-notifications").interval.every == 1
