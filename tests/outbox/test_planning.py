"""Which rows a booking plans: confirmations, reminders per the configured schedule, skipped rows
with their reasons, idempotent replays, and the send task an event publishes (read from the
broker). No worker: planning is what is under test, and the rows stay where planning put them
(on_commit fires inside the test's transaction only where a test runs its callbacks)."""

import ast
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from appointments.models import Appointment
from appointments.signals import appointment_booked
from notifications.models import Notification
from notifications.outbox import raw_sql
from notifications.outbox.delivery import send_notification
from tests.conftest import queued_ids

ALL_CHANNELS = ["email", "sms", "whatsapp", "in_app"]


def planned(appointment, **filters):
    return {
        (n.kind, n.channel, n.scheduled_for): n for n in Notification.objects.filter(appointment=appointment, **filters)
    }


def test_booking_plans_one_confirmation_per_channel_and_reminders_per_schedule(book, make_patient):
    appointment = book(make_patient(channels=ALL_CHANNELS), starts_in=timedelta(days=7))
    start, booked_at = appointment.starts_at, appointment.created_at

    rows = planned(appointment)

    assert set(rows) == {
        ("booking_confirmation", "email", booked_at),
        ("booking_confirmation", "sms", booked_at),
        ("booking_confirmation", "whatsapp", booked_at),
        ("booking_confirmation", "in_app", booked_at),
        ("reminder", "email", start - timedelta(days=2)),
        ("reminder", "in_app", start - timedelta(days=2)),
        ("reminder", "sms", start - timedelta(days=1)),
        ("reminder", "whatsapp", start - timedelta(days=1)),
        ("reminder", "sms", start - timedelta(hours=2)),
        ("reminder", "whatsapp", start - timedelta(hours=2)),
    }
    assert {n.status for n in rows.values()} == {"pending"}
    assert rows[("reminder", "whatsapp", start - timedelta(days=1))].recipient == "whatsapp:+14155550100"
    assert rows[("reminder", "in_app", start - timedelta(days=2))].recipient == f"patient:{appointment.patient_id}"


def test_reminders_go_only_on_channels_the_patient_chose(book, make_patient):
    appointment = book(make_patient(channels=["email"]), starts_in=timedelta(days=7))

    rows = planned(appointment)

    assert set(rows) == {
        ("booking_confirmation", "email", appointment.created_at),
        ("reminder", "email", appointment.starts_at - timedelta(days=2)),
    }


def test_reminder_schedule_is_read_from_settings(book, make_patient, settings):
    settings.NOTIFICATIONS_REMINDER_SCHEDULE = [{"hours_before": 3, "minutes_before": 30, "channels": ["sms"]}]
    appointment = book(make_patient(channels=["email", "sms"]), starts_in=timedelta(days=7))

    reminders = planned(appointment, kind="reminder")

    assert set(reminders) == {("reminder", "sms", appointment.starts_at - timedelta(hours=3, minutes=30))}


def test_reminder_whose_time_passed_at_booking_is_skipped_with_reason(book, make_patient):
    # 36 hours ahead: the 2-day email reminder is already late, the 1-day and 2-hour ones are not.
    appointment = book(make_patient(channels=["email", "sms"]), starts_in=timedelta(hours=36))
    start = appointment.starts_at

    reminders = planned(appointment, kind="reminder")

    late = reminders[("reminder", "email", start - timedelta(days=2))]
    assert late.status == "skipped"
    assert "passed" in late.last_error
    assert reminders[("reminder", "sms", start - timedelta(days=1))].status == "pending"
    assert reminders[("reminder", "sms", start - timedelta(hours=2))].status == "pending"
    # A skipped row is never claimed, however long the sweep waits.
    assert send_notification(late.pk) is None
    late.refresh_from_db()
    assert late.status == "skipped" and late.attempts == 0


def test_sms_without_phone_is_skipped_with_reason_and_booking_succeeds(staff_client, make_patient, clinic):
    patient = make_patient(channels=["email", "sms"], phone="")

    response = staff_client.post(
        "/api/appointments/",
        {
            "patient": patient.pk,
            "provider": "Dr. Ada Lovelace",
            "starts_at": (timezone.now() + timedelta(days=7)).isoformat(),
            "duration_minutes": 30,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    sms_rows = Notification.objects.filter(appointment_id=response.data["id"], channel="sms")
    assert sms_rows.count() == 3  # the confirmation and two reminders
    for row in sms_rows:
        assert row.status == "skipped"
        assert row.last_error == "patient has no address for sms; sent by email instead"
    assert not Notification.objects.filter(status="failed").exists()
    email_rows = Notification.objects.filter(appointment_id=response.data["id"], channel="email")
    assert {row.status for row in email_rows} == {"pending"}


def test_opted_out_channel_gives_skipped_rows(book, make_patient):
    appointment = book(make_patient(channels=["email", "sms"], opted_out=["sms"]))

    sms_rows = Notification.objects.filter(appointment=appointment, channel="sms")

    assert sms_rows.count() == 3
    assert {(row.status, row.last_error) for row in sms_rows} == {("skipped", "patient opted out of sms")}
    assert {row.status for row in Notification.objects.filter(appointment=appointment, channel="email")} == {"pending"}


def test_channel_opted_out_after_planning_is_skipped_at_send_time(book, make_patient, twilio):
    patient = make_patient(channels=["email", "sms"])
    appointment = book(patient)
    sms = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="sms")
    assert sms.status == "pending"
    patient.opted_out = ["sms"]
    patient.save(update_fields=["opted_out"])

    assert send_notification(sms.pk) == "skipped"

    sms.refresh_from_db()
    assert (sms.status, sms.last_error) == ("skipped", "patient opted out of sms")
    assert twilio.requests == []


def test_replaying_booking_signal_creates_no_duplicate_rows(book, make_patient):
    appointment = book(make_patient(channels=ALL_CHANNELS))
    before = sorted(Notification.objects.filter(appointment=appointment).values_list("id", "kind", "channel"))

    appointment_booked.send(Appointment, appointment=appointment, occurred_at=appointment.created_at)
    appointment_booked.send(Appointment, appointment=appointment, occurred_at=appointment.created_at)

    after = sorted(Notification.objects.filter(appointment=appointment).values_list("id", "kind", "channel"))
    assert after == before
    assert len(after) == 10


def test_direct_duplicate_insert_is_refused_by_notification_planned_once(book):
    appointment = book()
    original = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="email")

    def insert(scheduled_for):
        return Notification.objects.create(
            appointment=appointment,
            patient=original.patient,
            kind=original.kind,
            channel=original.channel,
            scheduled_for=scheduled_for,
            recipient=original.recipient,
            context=original.context,
        )

    with pytest.raises(IntegrityError), transaction.atomic():
        insert(original.scheduled_for)
    insert(original.scheduled_for + timedelta(minutes=1))  # the same row at another time is another message

    planned = Notification.objects.filter(appointment=appointment, kind=original.kind, channel=original.channel)
    assert sorted(planned.values_list("scheduled_for", flat=True)) == [
        original.scheduled_for,
        original.scheduled_for + timedelta(minutes=1),
    ]


def published(server):
    """The ids each send task waiting in the broker names, one set a task."""
    return [set(ast.literal_eval(args)[0]) for args in queued_ids(server)]


def test_a_booking_publishes_one_send_task_for_its_pending_confirmations(
    book, make_patient, broker_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        appointment = book(make_patient(channels=["email", "sms"], opted_out=["sms"]))

    email = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="email")
    sms = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="sms")
    assert published(broker_server) == [{email.pk}]
    assert (email.status, sms.status) == ("pending", "skipped")


def test_a_replayed_booking_event_publishes_its_pending_confirmations_again(
    book, make_patient, broker_server, django_capture_on_commit_callbacks
):
    appointment = book(make_patient(channels=["email", "sms"]))
    confirmations = Notification.objects.filter(appointment=appointment, kind="booking_confirmation")

    with django_capture_on_commit_callbacks(execute=True):
        appointment_booked.send(Appointment, appointment=appointment, occurred_at=appointment.created_at)

    assert published(broker_server) == [set(confirmations.values_list("pk", flat=True))]
    assert Notification.objects.filter(appointment=appointment).count() == 5


def test_rows_too_many_for_one_statement_are_all_planned(
    book, make_patient, monkeypatch, broker_server, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(raw_sql, "MAX_PARAMETERS", 60)  # two rows a statement, of 27 columns each

    with django_capture_on_commit_callbacks(execute=True):
        appointment = book(make_patient(channels=ALL_CHANNELS))

    assert Notification.objects.filter(appointment=appointment).count() == 10
    confirmations = Notification.objects.filter(appointment=appointment, kind="booking_confirmation")
    assert published(broker_server) == [set(confirmations.values_list("pk", flat=True))]
    assert confirmations.count() == 4
