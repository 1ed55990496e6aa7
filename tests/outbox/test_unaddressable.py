"""Nobody silently unreachable (issue 24, item 3): a message that cannot be addressed on its
channel (SMS or WhatsApp with no phone) goes by email instead, once, rather than ending
skipped with nothing sent."""

from django.core import mail

from notifications.models import Notification
from notifications.outbox.delivery import send_notification


def rows_of(appointment, kind="booking_confirmation"):
    return {(row.channel, row.status) for row in Notification.objects.filter(appointment=appointment, kind=kind)}


def test_a_text_message_with_no_phone_goes_by_email_instead(book, make_patient):
    appointment = book(make_patient(channels=["sms"], phone="", email="nophone@example.com"))

    assert rows_of(appointment) == {("sms", "skipped"), ("email", "pending")}
    sms = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="sms")
    assert sms.last_error == "patient has no address for sms; sent by email instead"
    email = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="email")
    assert send_notification(email.pk) == "sent"
    assert [m.to for m in mail.outbox] == [["nophone@example.com"]]


def test_its_reminders_go_by_email_at_their_own_times(book, make_patient):
    appointment = book(make_patient(channels=["sms"], phone=""))

    texts = Notification.objects.filter(appointment=appointment, kind="reminder", channel="sms")
    emails = Notification.objects.filter(appointment=appointment, kind="reminder", channel="email")
    assert sorted(r.scheduled_for for r in emails) == sorted(r.scheduled_for for r in texts)
    assert {r.status for r in emails} == {"pending"}


def test_sms_and_whatsapp_with_no_phone_make_one_email(book, make_patient):
    appointment = book(make_patient(channels=["sms", "whatsapp"], phone=""))

    assert rows_of(appointment) == {("sms", "skipped"), ("whatsapp", "skipped"), ("email", "pending")}


def test_a_patient_who_also_chose_email_gets_it_once(book, make_patient):
    appointment = book(make_patient(channels=["email", "sms"], phone=""))

    assert (
        Notification.objects.filter(appointment=appointment, kind="booking_confirmation", channel="email").count() == 1
    )


def test_no_email_instead_when_the_patient_has_none_or_opted_out_of_it(book, make_patient):
    without = book(make_patient(channels=["sms"], phone="", email=""))
    opted_out = book(make_patient(channels=["sms"], phone="", opted_out=["email"]))

    assert rows_of(without) == {("sms", "skipped")}
    assert rows_of(opted_out) == {("sms", "skipped")}
    assert Notification.objects.get(appointment=without, kind="booking_confirmation").last_error == (
        "patient has no address for sms"
    )


def test_an_opted_out_text_channel_does_not_go_by_email(book, make_patient):
    appointment = book(make_patient(channels=["sms"], phone="", opted_out=["sms"]))

    assert rows_of(appointment) == {("sms", "skipped")}
