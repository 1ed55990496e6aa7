"""Calendar invitations: the confirmation adds the appointment to the patient's calendar, each
reschedule moves that same entry (same UID, higher SEQUENCE), the cancellation withdraws it;
each email sent by a real worker, parsed back with icalendar."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.core import mail
from icalendar import Calendar

from appointments import services
from notifications.models import Notification
from notifications.outbox.delivery import send_notification
from tests.conftest import settled, wait_for

MADRID = ZoneInfo("Europe/Madrid")


def invitation_of(email):
    ((calendar, mimetype),) = [part for part in email.alternatives if part[1].startswith("text/calendar")]
    parsed = Calendar.from_ical(calendar)
    assert mimetype == f"text/calendar; method={parsed['method']}"
    (event,) = parsed.events
    return parsed, event


def sent_email(appointment, kind):
    (row,) = settled(Notification.objects.filter(appointment=appointment, kind=kind, channel="email"))
    assert row.status == "sent", row.last_error
    return wait_for(
        lambda: next(
            (m for m in mail.outbox if m.extra_headers["Message-ID"].strip("<>") == row.provider_message_id), None
        )
    )


def test_invitation_is_requested_moved_and_cancelled_under_one_uid(celery_worker, make_patient):
    patient = make_patient(channels=["email"], timezone="Europe/Madrid", language="es")
    first = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)
    appointment = services.book(
        patient=patient, provider="Dra. Ana Torres", starts_at=first, duration_minutes=45, location="Sala 2"
    )

    booked, event = invitation_of(sent_email(appointment, "booking_confirmation"))
    assert booked["method"] == "REQUEST"
    uid = str(event["uid"])
    assert event["sequence"] == 0
    assert event.start == first.astimezone(MADRID)
    assert event["dtstart"].params["TZID"] == "Europe/Madrid"
    assert event.end - event.start == timedelta(minutes=45)
    assert str(event["location"]) == "Sala 2"
    assert str(event["summary"]) == "Cita con Dra. Ana Torres"
    assert [str(zone["tzid"]) for zone in booked.timezones] == ["Europe/Madrid"]

    services.reschedule(appointment.pk, starts_at=first + timedelta(days=1))
    moved, event = invitation_of(sent_email(appointment, "reschedule"))
    assert moved["method"] == "REQUEST"
    assert (str(event["uid"]), event["sequence"]) == (uid, 1)
    assert event.start == (first + timedelta(days=1)).astimezone(MADRID)

    services.cancel(appointment.pk, reason="Doctor unwell")
    cancelled, event = invitation_of(sent_email(appointment, "cancellation"))
    assert cancelled["method"] == "CANCEL"
    assert (str(event["uid"]), event["sequence"]) == (uid, 2)
    assert str(event["status"]) == "CANCELLED"
    assert event.start == (first + timedelta(days=1)).astimezone(MADRID)


def test_each_appointment_has_its_own_uid(make_patient):
    patient = make_patient(channels=["email"])
    uids = []
    for day in (1, 2):
        appointment = services.book(
            patient=patient,
            provider="Dr. Ada Lovelace",
            starts_at=datetime(2031, 3, day, 9, tzinfo=UTC),
            duration_minutes=30,
        )
        send_notification(appointment.notifications.get(kind="booking_confirmation").pk)
        uids.append(str(invitation_of(mail.outbox[-1])[1]["uid"]))

    assert len(set(uids)) == 2


def test_reminder_email_carries_no_invitation(book, make_patient):
    appointment = book(make_patient(channels=["email"]), starts_in=timedelta(days=7))
    reminder = appointment.notifications.get(kind="reminder", channel="email")
    Notification.objects.filter(pk=reminder.pk).update(scheduled_for=datetime.now(UTC))

    send_notification(reminder.pk)

    (email,) = mail.outbox
    assert [mimetype for _, mimetype in email.alternatives] == ["text/html"]
