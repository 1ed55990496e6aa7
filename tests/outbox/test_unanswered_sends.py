"""A send whose answer never came may have been accepted by Twilio: the retry looks first."""

from notifications.channels.twilio_backend import CLOCK_SKEW
from notifications.models import Notification
from notifications.outbox import delivery, sweeps

PHONE = "+14155550177"


def sms_row(book, make_patient):
    appointment = book(make_patient(channels=["sms"], phone=PHONE))
    return appointment.notifications.get(kind="booking_confirmation")


def test_unanswered_send_is_retried_without_a_second_sms(db, settings, twilio, book, make_patient):
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    settings.NOTIFICATIONS_BACKOFF_BASE = 0
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 0
    twilio.script(PHONE, ("slow", 1))
    row = sms_row(book, make_patient)

    assert delivery.send_notification(row.pk) == "failed"
    assert Notification.objects.get(pk=row.pk).possibly_sent
    assert sweeps.sweep().outcomes["sent"] == 1

    row.refresh_from_db()
    # The look-up reaches back to the row's own send, less Twilio's possible clock skew.
    since = row.send_started_at.replace(microsecond=0) - CLOCK_SKEW
    assert twilio.lookups == [
        {"To": PHONE, "From": settings.TWILIO_PHONE_NUMBER, "DateSent>": since.strftime("%Y-%m-%dT%H:%M:%SZ")}
    ]
    assert len(twilio.accepted) == 1
    assert row.provider_message_id == twilio.accepted[0]["sid"]


def test_unanswered_send_that_twilio_never_accepted_is_sent_on_retry(db, settings, twilio, book, make_patient):
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    settings.NOTIFICATIONS_BACKOFF_BASE = 0
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 0
    twilio.script(PHONE, ("slow", 1))
    row = sms_row(book, make_patient)
    delivery.send_notification(row.pk)
    twilio.accepted.clear()  # as if Twilio had dropped the request it never answered

    sweeps.sweep()

    row.refresh_from_db()
    assert row.status == "sent"
    assert [m["to"] for m in twilio.accepted] == [PHONE]


def test_refused_connection_is_retried_without_looking_first(db, settings, twilio, book, make_patient):
    settings.NOTIFICATIONS_BACKOFF_BASE = 0
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 0
    row = sms_row(book, make_patient)
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:1"
    delivery.send_notification(row.pk)
    assert not Notification.objects.get(pk=row.pk).possibly_sent

    settings.TWILIO_API_BASE_URL = twilio.base_url
    sweeps.sweep()

    assert twilio.lookups == []
    assert len(twilio.accepted) == 1
    assert Notification.objects.get(pk=row.pk).status == "sent"


def test_answer_trickled_past_the_timeout_ends_the_send_as_unanswered(db, settings, twilio, book, make_patient):
    """Each byte of the answer comes within the read timeout, the whole answer not within the
    timeout: the send ends unanswered (possibly sent), not when the server is done."""
    settings.TWILIO_HTTP_TIMEOUT = 0.5
    settings.NOTIFICATIONS_BACKOFF_BASE = 0
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 0
    twilio.script(PHONE, ("trickle", 0.02))
    row = sms_row(book, make_patient)

    assert delivery.send_notification(row.pk) == "failed"

    row.refresh_from_db()
    assert (row.error_code, row.possibly_sent) == ("unanswered", True)
    assert sweeps.sweep().outcomes["sent"] == 1
    assert len(twilio.accepted) == 1
