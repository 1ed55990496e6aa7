from django.core import mail

from tests.conftest import settled


def test_booking_sends_email_and_sms_through_worker(celery_worker, book, twilio):
    appointment = book()
    rows = {n.channel: n for n in settled(appointment.notifications.filter(kind="booking_confirmation"))}
    assert rows["email"].status == "sent"
    assert rows["sms"].status == "sent"
    assert len(mail.outbox) == 1
    assert [r.to for r in twilio.requests] == ["+14155550100"]
    assert "Dr. Ada Lovelace" in twilio.requests[0].body
    assert rows["sms"].provider_message_id.startswith("SM")
