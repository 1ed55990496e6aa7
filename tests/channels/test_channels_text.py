"""SMS and WhatsApp through the real twilio client, talking to the stand-in Twilio server: the
addresses it sends, how each kind of provider answer is classified, and the email fallback."""

import json
import socket
from datetime import timedelta

import pytest
from django.core import mail

from notifications.models import Notification
from notifications.outbox.delivery import send_notification
from tests.conftest import settled, wait_for

PERMANENT = {"+15005550001": "21211", "+15005550004": "21610", "+15005550009": "21614"}


def confirmation(appointment, channel):
    return Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel=channel)


def send_confirmation(appointment, channel="sms"):
    row = confirmation(appointment, channel)
    send_notification(row.pk)
    row.refresh_from_db()
    return row


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_whatsapp_goes_to_standin_with_whatsapp_addresses(celery_worker, book, make_patient, twilio):
    appointment = book(make_patient(channels=["whatsapp"], phone="+14155550123"))

    (row,) = settled(appointment.notifications.filter(kind="booking_confirmation"))

    assert row.status == "sent"
    assert len(twilio.requests) == 1
    request = twilio.requests[0]
    assert request.form["To"] == "whatsapp:+14155550123"
    assert request.form["From"] == "whatsapp:+14155238886"
    assert json.loads(request.form["ContentVariables"])["4"] == "Dr. Ada Lovelace"
    assert row.provider_message_id.startswith("SM")


def test_whatsapp_sender_configured_without_prefix_gets_it(book, make_patient, twilio, settings):
    settings.TWILIO_WHATSAPP_NUMBER = "+14155238886"
    appointment = book(make_patient(channels=["whatsapp"]))

    row = send_confirmation(appointment, "whatsapp")

    assert row.status == "sent"
    assert twilio.requests[0].form["From"] == "whatsapp:+14155238886"


def test_sms_goes_from_the_twilio_number_with_the_status_callback(book, make_patient, twilio, settings):
    settings.TWILIO_STATUS_CALLBACK_URL = "https://clinic.example/webhooks/twilio/status/"
    appointment = book(make_patient(channels=["sms"], phone="+14155550123"))

    row = send_confirmation(appointment)

    assert row.status == "sent" and row.attempts == 1
    (request,) = twilio.requests
    assert request.form["To"] == "+14155550123"
    assert request.form["From"] == "+15005550006"
    assert request.form["StatusCallback"] == f"https://clinic.example/webhooks/twilio/status/?notification={row.pk}"
    assert request.account_sid == twilio.account_sid
    assert row.provider_message_id.startswith("SM")


@pytest.mark.parametrize("number", sorted(PERMANENT))
def test_permanent_twilio_error_fails_at_once_and_keeps_the_code(book, make_patient, twilio, number):
    appointment = book(make_patient(channels=["email", "sms"], phone=number))

    row = send_confirmation(appointment)

    assert row.status == "failed"
    assert row.next_attempt_at is None
    assert row.is_dead
    assert row.error_code == PERMANENT[number]
    assert PERMANENT[number] in row.last_error
    assert len(twilio.sent_to(number)) == 1
    assert len(twilio.requests) == 1
    attempt = row.attempt_log.get()
    assert (attempt.outcome, attempt.error_code) == ("failed", PERMANENT[number])


@pytest.mark.parametrize(("status", "code"), [(429, "20429"), (503, "20500"), (500, "20500")])
def test_rate_limit_and_server_errors_are_retryable(book, make_patient, twilio, status, code):
    appointment = book(make_patient(channels=["sms"], phone="+14155550123"))
    twilio.script("+14155550123", status)

    row = send_confirmation(appointment)

    assert row.status == "failed"
    assert row.next_attempt_at is not None and not row.is_dead
    assert row.error_code == code
    assert str(status) in row.last_error
    assert len(twilio.requests) == 1  # retrying is the sweep's job, not the HTTP client's
    assert not Notification.objects.filter(fallback_for=row).exists()


def test_refused_twilio_credentials_are_retried_not_fatal(book, make_patient, twilio):
    appointment = book(make_patient(channels=["sms"], phone="+14155550123"))
    twilio.script("+14155550123", ("error", 401, 20003, "Authenticate"))

    row = send_confirmation(appointment)

    assert (row.status, row.error_code) == ("failed", "20003")
    assert not row.is_dead
    assert not Notification.objects.filter(fallback_for=row).exists()


def test_answer_slower_than_the_timeout_is_transient(book, make_patient, twilio, settings):
    settings.TWILIO_HTTP_TIMEOUT = 0.5
    appointment = book(make_patient(channels=["sms"], phone="+14155550123"))
    twilio.script("+14155550123", ("slow", 2))

    row = send_confirmation(appointment)

    # The client stopped waiting on its read timeout (not timed here: the error says so).
    assert (row.error_code, row.possibly_sent) == ("unanswered", True)
    assert row.status == "failed"
    assert row.next_attempt_at is not None and not row.is_dead
    assert row.last_error


def test_refused_connection_is_transient(book, make_patient, twilio, settings):
    settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{closed_port()}"
    appointment = book(make_patient(channels=["sms"], phone="+14155550123"))

    row = send_confirmation(appointment)

    assert row.status == "failed"
    assert row.next_attempt_at is not None and not row.is_dead
    assert "unreachable" in row.last_error
    assert twilio.requests == []


def test_transient_failure_is_sent_once_the_retry_comes(book, make_patient, twilio):
    appointment = book(make_patient(channels=["sms"], phone="+14155550123"))
    twilio.script("+14155550123", 503)
    row = send_confirmation(appointment)
    assert row.status == "failed"
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=row.next_attempt_at - timedelta(hours=2))

    send_notification(row.pk)

    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 2
    assert (row.last_error, row.error_code) == ("", "")
    assert len(twilio.requests) == 2


def test_permanent_sms_failure_falls_back_to_email(celery_worker, book, make_patient, twilio):
    patient = make_patient(channels=["sms"], phone="+15005550001")
    appointment = book(patient)
    sms = confirmation(appointment, "sms")

    fallback = wait_for(lambda: Notification.objects.filter(fallback_for=sms, status="sent").first())

    sms.refresh_from_db()
    assert sms.status == "failed" and sms.is_dead and sms.error_code == "21211"
    assert (fallback.channel, fallback.kind, fallback.recipient) == ("email", "booking_confirmation", patient.email)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [patient.email]
    assert "Dr. Ada Lovelace" in mail.outbox[0].subject
    assert len(twilio.requests) == 1


def test_no_fallback_when_the_patient_already_gets_it_by_email(book, make_patient, twilio):
    appointment = book(make_patient(channels=["email", "sms"], phone="+15005550001"))

    sms = send_confirmation(appointment)

    assert sms.status == "failed" and sms.is_dead
    assert not Notification.objects.filter(fallback_for=sms).exists()
    assert (
        Notification.objects.filter(appointment=appointment, kind="booking_confirmation", channel="email").count() == 1
    )
    assert mail.outbox == []


def test_sms_and_whatsapp_failing_for_good_fall_back_to_one_email(book, make_patient, twilio):
    appointment = book(make_patient(channels=["sms", "whatsapp"], phone="+15005550009"))

    sms = send_confirmation(appointment, "sms")
    whatsapp = send_confirmation(appointment, "whatsapp")

    assert (sms.status, whatsapp.status) == ("failed", "failed")
    assert sms.is_dead and whatsapp.is_dead
    fallbacks = Notification.objects.filter(appointment=appointment, channel="email")
    assert [row.fallback_for_id for row in fallbacks] == [sms.pk]
    send_notification(fallbacks[0].pk)
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("channel", ["sms", "whatsapp"])
def test_a_number_outside_the_allowed_countries_is_never_sent_and_email_goes_instead(
    book, make_patient, twilio, channel
):
    # A number kept from before the allow-list (or written straight to the database): the sender
    # is +1 (tests/conftest.py), so a premium-rate +882 number must not be texted.
    appointment = book(make_patient(channels=[channel], phone="+882345678901"))

    row = send_confirmation(appointment, channel)

    assert (row.status, row.error_code, row.next_attempt_at) == ("failed", "country_not_allowed", None)
    assert "+882" in row.last_error and "SMS_ALLOWED_COUNTRIES" in row.last_error
    assert twilio.requests == []
    assert Notification.objects.filter(fallback_for=row, channel="email").exists()
