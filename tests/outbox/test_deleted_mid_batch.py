"""An appointment deleted (in the admin) while its rows are in a batch: its rows go with it,
what was not yet sent is not sent, and the other rows of the batch are sent and recorded as if
nothing had happened."""

import threading

from django.db import connection

from appointments.models import Appointment
from notifications.models import Notification
from notifications.outbox import delivery
from tests.conftest import wait_for

PHONES = ["+14156200001", "+14156200002"]


def delete_appointment_once_sending_to(twilio, phone, appointment):
    """Delete the appointment as soon as the stand-in holds a send to phone (answered slowly)."""

    def delete():
        try:
            wait_for(lambda: twilio.sent_to(phone), timeout=5, interval=0.01)
            Appointment.objects.filter(pk=appointment.pk).delete()
        finally:
            connection.close()

    deleter = threading.Thread(target=delete)
    deleter.start()
    return deleter


def test_an_appointment_deleted_during_its_send_leaves_the_rest_of_the_batch_sent_and_recorded(
    transactional_db, settings, book, make_patient, twilio
):
    settings.NOTIFICATIONS_SEND_THREADS = 1
    deleted, kept = (book(make_patient(channels=["sms"], phone=phone)) for phone in PHONES)
    twilio.script(PHONES[0], ("slow", 0.5))
    batch = sorted(
        Notification.objects.filter(appointment__in=[deleted, kept], kind="booking_confirmation").claim(),
        key=lambda n: n.recipient,
    )
    deleter = delete_appointment_once_sending_to(twilio, PHONES[0], deleted)

    delivery.deliver(batch)
    deleter.join()

    [row] = Notification.objects.filter(appointment=kept, kind="booking_confirmation")
    assert (row.status, len(twilio.sent_to(PHONES[1]))) == ("sent", 1)
    assert not Notification.objects.filter(appointment_id=deleted.pk).exists()


def test_a_row_of_an_appointment_deleted_after_its_sibling_was_handed_out_is_not_sent(
    transactional_db, settings, book, make_patient, twilio, mailoutbox
):
    """The SMS and the email of one booking, one send thread: the appointment is deleted during
    the SMS's send, after one read of it served both rows; the email, handed out later, must not
    go out on that read."""
    settings.NOTIFICATIONS_SEND_THREADS = 1
    appointment = book(make_patient(channels=["sms", "email"], phone=PHONES[0]))
    twilio.script(PHONES[0], ("slow", 0.5))
    rows = Notification.objects.filter(appointment=appointment, kind="booking_confirmation")
    batch = sorted(rows.claim(), key=lambda n: n.channel != "sms")
    deleter = delete_appointment_once_sending_to(twilio, PHONES[0], appointment)

    delivery.deliver(batch)
    deleter.join()

    assert mailoutbox == []
