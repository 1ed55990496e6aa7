"""The daily digest for staff: one email listing the rows that died in the last 24 hours with
their errors, and the failures per channel; nothing when there is nothing to report. Beat runs
it as notifications.send_staff_digest."""

import re
from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.core import mail
from django.utils import timezone

from appointments.models import Appointment
from config.celery import app as celery_app
from notifications.channels import address_for
from notifications.models import Notification, NotificationAttempt
from notifications.operations import digest
from tests.conftest import wait_for

SMS_ERROR = "Twilio 400 error 21211: The 'To' number +14155550123 is not a valid phone number."
EMAIL_ERROR = "SMTP 550: <mailbox> unavailable"


@pytest.fixture
def appointment(make_patient):
    patient = make_patient(name="Grace Hopper", channels=["email", "sms"], phone="+14155550123")
    return Appointment.objects.create(
        patient=patient, provider="Dr. Ada Lovelace", starts_at=timezone.now() + timedelta(days=1)
    )


@pytest.fixture
def make_row(appointment):
    counter = iter(range(1, 100_000))

    def make(status, hours_ago, channel="sms", failed_attempts=0, **fields):
        touched = timezone.now() - timedelta(hours=hours_ago)
        if status == "failed" and fields.get("next_attempt_at") is None:
            fields.setdefault("died_at", touched)  # a dead row died when it was last touched
        row = Notification.objects.create(
            appointment=appointment,
            patient=appointment.patient,
            kind="reminder",
            channel=channel,
            status=status,
            scheduled_for=touched - timedelta(minutes=next(counter)),
            recipient=address_for(appointment.patient, channel),
            attempts=failed_attempts,
            updated_at=touched,
            **fields,
        )
        for number in range(1, failed_attempts + 1):
            NotificationAttempt.objects.create(
                notification=row,
                number=number,
                finished_at=touched - timedelta(minutes=failed_attempts - number),
                outcome="failed",
                error=fields.get("last_error", ""),
            )
        return row

    return make


def dead(make_row, hours_ago, channel, error, code="", attempts=1):
    return make_row("failed", hours_ago, channel=channel, failed_attempts=attempts, last_error=error, error_code=code)


@pytest.fixture
def recent_failures(make_row):
    """Two rows died in the last day (one SMS after 3 attempts, one email at once), one SMS
    failed transiently and waits for its retry; one email went fine."""
    return {
        "dead_sms": dead(make_row, 2, "sms", SMS_ERROR, code="21211", attempts=3),
        "dead_email": dead(make_row, 5, "email", EMAIL_ERROR, code="550"),
        "retrying_sms": make_row(
            "failed",
            1,
            channel="sms",
            failed_attempts=1,
            last_error="timeout",
            next_attempt_at=timezone.now() + timedelta(minutes=5),
        ),
        "sent_email": make_row("sent", 1, channel="email"),
    }


def test_sends_one_email_listing_the_dead_rows_and_counts(staff_user, recent_failures):
    report = digest.send_digest()

    assert report["sent"] is True
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [staff_user.email]
    assert "2 dead" in email.subject
    assert "5 failed attempts" in email.subject
    body = email.body
    for name in ("dead_sms", "dead_email"):
        assert f"#{recent_failures[name].pk} reminder by {recent_failures[name].channel}" in body
    assert "code 21211" in body and "is not a valid phone number" in body
    assert EMAIL_ERROR in body  # text part: not HTML-escaped
    assert f"#{recent_failures['retrying_sms'].pk} " not in body  # retrying, not dead
    assert re.search(r"^\s*sms\s+4 failed attempts, 1 dead$", body, re.M)
    assert re.search(r"^\s*email\s+1 failed attempt, 1 dead$", body, re.M)
    assert re.search(r"^\s*whatsapp\s+0 failed attempts, 0 dead$", body, re.M)


def test_the_html_part_lists_the_same_rows_escaped(staff_user, recent_failures):
    digest.send_digest()

    ((html, mimetype),) = mail.outbox[0].alternatives
    assert mimetype == "text/html"
    assert "SMTP 550: &lt;mailbox&gt; unavailable" in html
    for name in ("dead_sms", "dead_email"):
        assert f'<td style="padding-right: 1em;">{recent_failures[name].pk}</td>' in html
    assert html.count("Grace Hopper") == 2  # one line per dead row


def test_phone_numbers_in_errors_are_masked(staff_user, recent_failures):
    digest.send_digest()

    email = mail.outbox[0]
    assert "+14155550123" not in email.body
    assert "+14155550123" not in email.alternatives[0][0]
    assert "+…0123" in email.body


def test_sends_nothing_when_nothing_failed(staff_user, make_row):
    make_row("sent", 1, channel="email")
    make_row("pending", -5, channel="sms")
    make_row("cancelled", 2, channel="sms")

    report = digest.send_digest()

    assert report == {"sent": False, "reason": "nothing to report"}
    assert mail.outbox == []


def test_old_dead_rows_are_not_listed(staff_user, make_row):
    old = dead(make_row, 30, "sms", "Twilio 400 error 21610: unsubscribed recipient", code="21610")
    young = dead(make_row, 3, "email", EMAIL_ERROR, code="550")

    digest.send_digest()

    body = mail.outbox[0].body
    assert f"#{young.pk} " in body
    assert f"#{old.pk} " not in body
    assert "21610" not in body
    assert "Dead notifications (1)" in body


def test_sends_nothing_when_the_only_dead_rows_are_old(staff_user, make_row):
    dead(make_row, 25, "sms", SMS_ERROR, code="21211", attempts=2)

    assert digest.send_digest()["sent"] is False
    assert mail.outbox == []


def test_transient_failures_alone_are_reported_with_no_dead_rows(staff_user, make_row):
    make_row(
        "failed",
        1,
        channel="sms",
        failed_attempts=2,
        last_error="timeout",
        next_attempt_at=timezone.now() + timedelta(minutes=5),
    )

    digest.send_digest()

    body = mail.outbox[0].body
    assert "Dead notifications (0)" in body
    assert re.search(r"^\s*sms\s+2 failed attempts, 0 dead$", body, re.M)


def test_a_row_retried_by_staff_is_no_longer_dead(staff_user, make_row):
    row = dead(make_row, 1, "email", EMAIL_ERROR, code="550")
    Notification.objects.filter(pk=row.pk).retry()

    figures = digest.digest_figures()

    assert figures["dead_count"] == 0
    assert figures["failed_attempts"] == 1  # the attempt did fail, and is counted


def test_recipients_setting_overrides_the_staff(staff_user, recent_failures, settings):
    settings.NOTIFICATIONS_DIGEST_RECIPIENTS = ["ops@clinic.example", "oncall@clinic.example"]

    digest.send_digest()

    assert [email.to for email in mail.outbox] == [["ops@clinic.example", "oncall@clinic.example"]]


def test_recipients_are_active_staff_with_an_email(django_user_model, recent_failures):
    django_user_model.objects.create_user("a", "a@clinic.example", "x", is_staff=True)
    django_user_model.objects.create_user("b", "", "x", is_staff=True)
    django_user_model.objects.create_user("c", "c@clinic.example", "x", is_staff=True, is_active=False)
    django_user_model.objects.create_user("d", "d@example.com", "x")
    django_user_model.objects.create_user("e", "e@clinic.example", "x", is_staff=True, is_superuser=True)

    digest.send_digest()

    assert mail.outbox[0].to == ["a@clinic.example", "e@clinic.example"]


def test_no_recipient_sends_nothing(recent_failures, caplog):
    report = digest.send_digest()

    assert report == {"sent": False, "reason": "no recipients"}
    assert mail.outbox == []
    assert "NOTIFICATIONS_DIGEST_RECIPIENTS" in caplog.text


def test_the_task_is_in_the_beat_schedule_daily():
    schedule = django_settings.CELERY_BEAT_SCHEDULE.values()
    entries = [entry for entry in schedule if entry["task"] == "notifications.send_staff_digest"]

    assert len(entries) == 1
    assert entries[0]["schedule"] == crontab(hour=7, minute=0)
    celery_app.loader.import_default_modules()
    assert "notifications.send_staff_digest" in celery_app.tasks


def test_the_task_runs_on_the_worker_and_the_email_lands_in_the_outbox(celery_worker, staff_user, recent_failures):
    # As beat sends it: by the name in the schedule.
    celery_app.send_task("notifications.send_staff_digest")

    wait_for(lambda: len(mail.outbox) == 1)
    assert mail.outbox[0].to == [staff_user.email]
    assert f"#{recent_failures['dead_sms'].pk} " in mail.outbox[0].body
