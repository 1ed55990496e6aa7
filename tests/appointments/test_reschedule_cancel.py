"""Rescheduling and cancelling: what happens to the rows already planned, which notices go out,
and that repeating either changes nothing."""

from datetime import timedelta
from datetime import timezone as dt_timezone

from django.core import mail
from django.utils import timezone

from appointments import services
from notifications.models import Notification
from notifications.outbox.delivery import send_notification
from notifications.outbox.models import record_send_starts
from notifications.outbox.sweeps import sweep
from tests.conftest import settled


def reminder_plan(appointment, status):
    return {
        (n.channel, n.scheduled_for)
        for n in Notification.objects.filter(appointment=appointment, kind="reminder", status=status)
    }


def expected_reminders(starts_at):
    return {
        ("email", starts_at - timedelta(days=2)),
        ("sms", starts_at - timedelta(days=1)),
        ("sms", starts_at - timedelta(hours=2)),
    }


def api_time(moment, hours_offset=0):
    """An ISO 8601 time with an explicit offset, as the API wants."""
    return moment.astimezone(dt_timezone(timedelta(hours=hours_offset))).isoformat()


# Reschedule


def test_reschedule_cancels_pending_reminders_of_the_old_time(book):
    appointment = book(starts_in=timedelta(days=7))
    old_start = appointment.starts_at

    services.reschedule(appointment.pk, starts_at=old_start + timedelta(days=3))

    assert reminder_plan(appointment, "cancelled") == expected_reminders(old_start)
    assert not Notification.objects.filter(
        appointment=appointment, kind="reminder", status="pending", scheduled_for__lt=old_start
    ).exists()


def test_reschedule_plans_new_reminders_for_the_new_time(book):
    appointment = book(starts_in=timedelta(days=7))
    new_start = appointment.starts_at + timedelta(days=3)

    services.reschedule(appointment.pk, starts_at=new_start)

    assert reminder_plan(appointment, "pending") == expected_reminders(new_start)


def test_reschedule_through_api_sends_one_notice_per_channel_now(
    celery_worker, staff_client, book, make_patient, twilio, settings
):
    patient = make_patient(channels=["email", "sms", "whatsapp", "in_app"])
    appointment = book(patient, starts_in=timedelta(days=7))
    settled(appointment.notifications.filter(kind="booking_confirmation"))
    mail.outbox.clear()
    twilio.reset()
    new_start = appointment.starts_at + timedelta(days=1)

    response = staff_client.post(
        f"/api/appointments/{appointment.pk}/reschedule/", {"starts_at": api_time(new_start, 2)}, format="json"
    )

    assert response.status_code == 200, response.content
    notices = settled(appointment.notifications.filter(kind="reschedule"))
    assert sorted(n.channel for n in notices) == ["email", "in_app", "sms", "whatsapp"]
    assert {n.status for n in notices} == {"sent"}
    assert len({n.scheduled_for for n in notices}) == 1
    assert len(mail.outbox) == 1 and "moved" in mail.outbox[0].subject
    assert sorted(r.to for r in twilio.requests) == ["+14155550100", "whatsapp:+14155550100"]
    sms, whatsapp = sorted(twilio.requests, key=lambda r: r.to)
    assert "moved" in sms.body
    assert whatsapp.form["ContentSid"] == settings.TWILIO_CONTENT_SIDS["reschedule"]


def test_rescheduling_to_the_same_time_again_creates_nothing_new(staff_client, book):
    appointment = book(starts_in=timedelta(days=7))
    new_start = (appointment.starts_at + timedelta(days=2)).replace(microsecond=0)
    url = f"/api/appointments/{appointment.pk}/reschedule/"

    first = staff_client.post(url, {"starts_at": api_time(new_start)}, format="json")
    rows = sorted(Notification.objects.filter(appointment=appointment).values_list("id", "status"))
    # The same instant, written with another offset.
    again = staff_client.post(url, {"starts_at": api_time(new_start, -5)}, format="json")

    assert first.status_code == 200, first.content
    assert again.status_code == 200, again.content
    assert sorted(Notification.objects.filter(appointment=appointment).values_list("id", "status")) == rows
    assert Notification.objects.filter(appointment=appointment, kind="reschedule").count() == 2


def test_rescheduling_back_to_the_original_time_plans_fresh_reminders(book):
    appointment = book(starts_in=timedelta(days=7))
    original = appointment.starts_at
    first_ids = set(Notification.objects.filter(appointment=appointment, kind="reminder").values_list("id", flat=True))

    services.reschedule(appointment.pk, starts_at=original + timedelta(days=1))
    services.reschedule(appointment.pk, starts_at=original)

    fresh = Notification.objects.filter(appointment=appointment, kind="reminder", status="pending")
    assert {(n.channel, n.scheduled_for) for n in fresh} == expected_reminders(original)
    assert not first_ids & {n.pk for n in fresh}
    assert Notification.objects.filter(pk__in=first_ids, status="cancelled").count() == len(first_ids) == 3
    # Two moves, two notices per channel.
    assert Notification.objects.filter(appointment=appointment, kind="reschedule").count() == 4


def test_rescheduling_a_cancelled_appointment_is_409_with_a_clear_message(staff_client, book):
    appointment = book(starts_in=timedelta(days=7))
    staff_client.post(f"/api/appointments/{appointment.pk}/cancel/", {"reason": "patient unwell"}, format="json")
    rows = Notification.objects.filter(appointment=appointment).count()

    response = staff_client.post(
        f"/api/appointments/{appointment.pk}/reschedule/",
        {"starts_at": api_time(appointment.starts_at + timedelta(days=1))},
        format="json",
    )

    assert response.status_code == 409
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"status": ["A cancelled appointment cannot be rescheduled."]}
    assert Notification.objects.filter(appointment=appointment).count() == rows


# Cancel


def test_cancel_turns_pending_rows_into_cancelled(staff_client, book):
    appointment = book(starts_in=timedelta(days=7))
    pending_before = set(
        Notification.objects.filter(appointment=appointment, status="pending").values_list("id", flat=True)
    )

    response = staff_client.post(
        f"/api/appointments/{appointment.pk}/cancel/", {"reason": "clinic closed"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.data["status"] == "cancelled"
    assert len(pending_before) == 5  # two confirmations, three reminders
    assert (
        set(Notification.objects.filter(pk__in=pending_before, status="cancelled").values_list("id", flat=True))
        == pending_before
    )
    assert (
        Notification.objects.filter(appointment=appointment, status="pending").exclude(kind="cancellation").count() == 0
    )


def test_cancel_sends_one_cancellation_notice_per_channel(
    celery_worker, staff_client, book, make_patient, twilio, settings
):
    patient = make_patient(channels=["email", "sms", "whatsapp", "in_app"])
    appointment = book(patient, starts_in=timedelta(days=7))
    settled(appointment.notifications.filter(kind="booking_confirmation"))
    mail.outbox.clear()
    twilio.reset()

    response = staff_client.post(
        f"/api/appointments/{appointment.pk}/cancel/", {"reason": "clinic closed"}, format="json"
    )

    assert response.status_code == 200, response.content
    notices = settled(appointment.notifications.filter(kind="cancellation"))
    assert sorted(n.channel for n in notices) == ["email", "in_app", "sms", "whatsapp"]
    assert {n.status for n in notices} == {"sent"}
    assert len(mail.outbox) == 1 and "cancelled" in mail.outbox[0].subject
    assert "clinic closed" in mail.outbox[0].body
    assert sorted(r.to for r in twilio.requests) == ["+14155550100", "whatsapp:+14155550100"]
    sms, whatsapp = sorted(twilio.requests, key=lambda r: r.to)
    assert "cancelled" in sms.body and "clinic closed" in sms.body
    assert whatsapp.form["ContentSid"] == settings.TWILIO_CONTENT_SIDS["cancellation"]
    assert {n.status for n in appointment.notifications.filter(kind="reminder")} == {"cancelled"}


def test_cancelling_twice_creates_no_duplicate_rows(staff_client, book):
    appointment = book(starts_in=timedelta(days=7))
    url = f"/api/appointments/{appointment.pk}/cancel/"

    first = staff_client.post(url, {"reason": "clinic closed"}, format="json")
    rows = sorted(Notification.objects.filter(appointment=appointment).values_list("id", "kind", "channel", "status"))
    second = staff_client.post(url, {"reason": "asked again"}, format="json")

    assert first.status_code == 200, first.content
    assert second.status_code == 200, second.content
    assert second.data["cancel_reason"] == "clinic closed"
    assert (
        sorted(Notification.objects.filter(appointment=appointment).values_list("id", "kind", "channel", "status"))
        == rows
    )
    assert Notification.objects.filter(appointment=appointment, kind="cancellation").count() == 2


# Rows waiting for a retry are as much "still to go out" as pending ones.


def failing_reminder(appointment, twilio):
    """The appointment's 1-day SMS reminder, come due and failed with a retry to come."""
    reminder = Notification.objects.get(
        appointment=appointment, kind="reminder", channel="sms", scheduled_for=appointment.starts_at - timedelta(days=1)
    )
    Notification.objects.filter(pk=reminder.pk).update(scheduled_for=timezone.now())  # its time has come
    twilio.script(reminder.recipient, 503)
    send_notification(reminder.pk)
    reminder.refresh_from_db()
    assert reminder.status == "failed" and reminder.next_attempt_at is not None
    return reminder


def test_cancel_withdraws_messages_waiting_for_a_retry(book, twilio):
    appointment = book(starts_in=timedelta(days=7))
    reminder = failing_reminder(appointment, twilio)

    services.cancel(appointment.pk, reason="clinic closed")

    reminder.refresh_from_db()
    assert reminder.status == "cancelled"
    assert reminder.next_attempt_at is None
    # The retry's time comes: the sweep sends the cancellation notices and no reminder.
    Notification.objects.filter(appointment=appointment).retrying().update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    report = sweep(include_failed=True)
    assert report.outcomes["sent"] == 2
    assert len([r for r in twilio.requests if "reminder" in r.body]) == 1  # the attempt that failed
    assert any("cancelled" in r.body for r in twilio.requests)


def test_reschedule_withdraws_old_reminders_waiting_for_a_retry(book, twilio):
    appointment = book(starts_in=timedelta(days=7))
    reminder = failing_reminder(appointment, twilio)

    services.reschedule(appointment.pk, starts_at=appointment.starts_at + timedelta(days=3))

    reminder.refresh_from_db()
    assert reminder.status == "cancelled"
    assert reminder.next_attempt_at is None


def reminder_in_flight_that_fails(appointment, change):
    """A reminder a worker was sending when the appointment changed, which then failed
    transiently: withdrawing rows cannot touch it, so its retry comes back later."""
    reminder = appointment.notifications.filter(kind="reminder", status="pending").first()
    Notification.objects.filter(pk=reminder.pk).update(scheduled_for=timezone.now() - timedelta(minutes=1))
    # Its send started (recorded before the request, as deliver does): in flight, not withdrawn.
    [in_flight] = record_send_starts(Notification.objects.filter(pk=reminder.pk).claim())
    change()
    in_flight.mark_failed("Twilio 503: Service error", permanent=False)
    Notification.objects.filter(pk=reminder.pk).update(next_attempt_at=timezone.now())
    return reminder


def test_retry_of_a_reminder_for_a_cancelled_appointment_is_skipped(book, twilio):
    appointment = book(starts_in=timedelta(hours=30))
    reminder = reminder_in_flight_that_fails(appointment, lambda: services.cancel(appointment.pk, reason="Unwell"))

    sweep()

    reminder.refresh_from_db()
    assert (reminder.status, reminder.last_error) == ("skipped", "appointment cancelled")
    assert [r.body for r in twilio.requests if "reminder" in r.body] == []


def test_retry_of_a_reminder_for_the_old_time_is_skipped(book, twilio):
    appointment = book(starts_in=timedelta(hours=30))
    new_time = appointment.starts_at + timedelta(days=1)
    reminder = reminder_in_flight_that_fails(
        appointment, lambda: services.reschedule(appointment.pk, starts_at=new_time)
    )

    sweep()

    reminder.refresh_from_db()
    assert (reminder.status, reminder.last_error) == ("skipped", "appointment moved")
