"""Minimum necessary: the appointment's reason stays out of every message unless the clinic turns
NOTIFICATIONS_SHOW_REASON on, and then only email bodies carry it (never a subject, an SMS, a
WhatsApp or an in-app message, whatever the clinic's own templates say); a sent message's
rendered copy is purged after NOTIFICATIONS_CONTENT_RETENTION_DAYS, its row staying."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.messages.rendering import render
from notifications.messages.store import save_template
from notifications.models import Notification
from tasks.retention import purge_old_notifications

REASON = "Knee pain"
EVERY_CHANNEL = ("email", "sms", "whatsapp", "in_app")


def parts(message):
    return {
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "calendar": message.calendar,
        **{f"variable {n}": value for n, value in message.variables.items()},
    }


def carrying_the_reason(appointment):
    return sorted(
        (row.channel, name)
        for row in appointment.notifications.all()
        for name, value in parts(render(row)).items()
        if REASON in value
    )


@pytest.fixture
def reasoned(book, make_patient):
    return book(patient=make_patient(channels=EVERY_CHANNEL), reason=REASON)


def test_the_reason_stays_out_of_every_message_by_default(reasoned):
    assert carrying_the_reason(reasoned) == []


def test_turned_on_only_email_bodies_carry_the_reason(reasoned, settings, staff_user):
    settings.NOTIFICATIONS_SHOW_REASON = True
    # Even where the clinic's own templates ask for it.
    for channel in ("sms", "whatsapp", "in_app"):
        fields = {"channel": channel, "kind": "booking_confirmation", "language": "en", "text": "Why: {{ reason }}"}
        save_template(None, fields, staff_user)
    email = {"channel": "email", "kind": "booking_confirmation", "language": "en", "subject": "About {{ reason }}"}
    save_template(None, email, staff_user)

    assert carrying_the_reason(reasoned) == [("email", "calendar"), ("email", "html"), ("email", "text")]


@pytest.fixture
def sent_rows(book):
    appointment = book(reason=REASON)
    old, young = list(appointment.notifications.order_by("pk"))[:2]
    now = timezone.now()
    for row, sent_at in ((old, now - timedelta(days=91)), (young, now - timedelta(days=89))):
        Notification.objects.filter(pk=row.pk).update(
            status="sent", sent_at=sent_at, updated_at=now, rendered_subject="S", rendered_text="T", rendered_html="H"
        )
    return old, young


def test_the_nightly_purge_removes_the_copy_of_messages_sent_before_the_content_period(sent_rows):
    old, young = sent_rows

    purge_old_notifications()

    old.refresh_from_db()
    young.refresh_from_db()
    assert (old.status, old.rendered_subject, old.rendered_text, old.rendered_html) == ("sent", "", "", "")
    assert old.sent_at is not None and old.channel and old.kind
    assert (young.rendered_subject, young.rendered_text, young.rendered_html) == ("S", "T", "H")


def test_the_content_period_comes_from_the_setting(sent_rows, settings):
    settings.NOTIFICATIONS_CONTENT_RETENTION_DAYS = 30
    old, young = sent_rows

    purge_old_notifications()

    young.refresh_from_db()
    assert young.rendered_text == ""
