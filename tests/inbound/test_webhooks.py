"""Twilio's status callbacks: POST /webhooks/twilio/status/, form-encoded and signed as Twilio
signs them (the real twilio RequestValidator computes every signature here). A receipt finds its
row by MessageSid and never moves a row's delivery status backwards."""

import logging
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from notifications.models import Notification
from notifications.outbox.delivery import send_notification

PATH = "/webhooks/twilio/status/"
# The URL Django rebuilds for a test client request (no proxy settings).
LOCAL_URL = f"http://testserver{PATH}"
PUBLIC_URL = f"https://public.example{PATH}"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def no_callback_url(settings):
    """Each test starts without a configured callback URL, whatever the environment says."""
    settings.TWILIO_STATUS_CALLBACK_URL = ""


def sign(params, url=LOCAL_URL, token="standin-token"):
    return RequestValidator(token).compute_signature(url, params)


def receipt(sid, status, **extra):
    """The fields Twilio posts with a message status callback."""
    return {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "To": "+14155550123",
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        **extra,
    }


def post(client, params, signature=None, url=LOCAL_URL, **headers):
    """POST the params form-encoded, signed for url unless a signature (or "" for none) is given."""
    if signature is None:
        signature = sign(params, url)
    if signature:
        headers["X-Twilio-Signature"] = signature
    return client.post(PATH, urlencode(params), content_type=FORM, headers=headers)


@pytest.fixture
def sent_sms(book, make_patient, twilio):
    """An SMS booking confirmation sent through the stand-in Twilio: it has a real MessageSid."""
    patient = make_patient(channels=["sms"], phone="+14155550123")
    appointment = book(patient)
    row = appointment.notifications.get(kind="booking_confirmation", channel="sms")
    assert send_notification(row.pk) == "sent"
    row.refresh_from_db()
    assert row.provider_message_id.startswith("SM") and row.delivery_status == ""
    return row


def delivery_of(row):
    row.refresh_from_db()
    return row.delivery_status, row.delivery_error_code


def test_signed_receipt_records_delivery_status(client, sent_sms):
    response = post(client, receipt(sent_sms.provider_message_id, "delivered"))

    assert response.status_code == 200
    assert response.json() == {"updated": True}
    assert delivery_of(sent_sms) == ("delivered", "")


def test_signed_receipt_records_error_code(client, sent_sms):
    response = post(client, receipt(sent_sms.provider_message_id, "undelivered", ErrorCode="30003"))

    assert response.status_code == 200
    assert delivery_of(sent_sms) == ("undelivered", "30003")


def test_receipt_without_signature_is_refused_with_json_403(client, sent_sms):
    response = post(client, receipt(sent_sms.provider_message_id, "delivered"), signature="")

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "X-Twilio-Signature" in response.json()
    assert delivery_of(sent_sms) == ("", "")


def test_receipt_signed_with_another_token_is_refused(client, sent_sms):
    params = receipt(sent_sms.provider_message_id, "delivered")

    response = post(client, params, signature=sign(params, token="not-our-auth-token"))

    assert response.status_code == 403
    assert delivery_of(sent_sms) == ("", "")


def test_receipt_with_a_field_changed_after_signing_is_refused(client, sent_sms):
    signed = receipt(sent_sms.provider_message_id, "delivered")
    tampered = {**signed, "MessageStatus": "read"}

    response = post(client, tampered, signature=sign(signed))

    assert response.status_code == 403
    assert delivery_of(sent_sms) == ("", "")


def test_receipt_is_refused_when_no_auth_token_is_configured(client, settings, sent_sms):
    settings.TWILIO_AUTH_TOKEN = ""
    params = receipt(sent_sms.provider_message_id, "delivered")

    response = post(client, params, signature=sign(params, token=""))

    assert response.status_code == 403
    assert delivery_of(sent_sms) == ("", "")


def test_webhook_answers_only_post(client):
    assert client.get(PATH).status_code == 405


def test_earlier_status_after_delivered_does_not_move_the_row_back(client, sent_sms):
    sid = sent_sms.provider_message_id
    assert post(client, receipt(sid, "delivered")).status_code == 200

    response = post(client, receipt(sid, "sent"))

    assert response.status_code == 200
    assert response.json() == {"updated": False}
    assert delivery_of(sent_sms) == ("delivered", "")


def test_read_after_delivered_moves_the_row_forward(client, sent_sms):
    sid = sent_sms.provider_message_id
    assert post(client, receipt(sid, "delivered")).status_code == 200

    response = post(client, receipt(sid, "read"))

    assert response.status_code == 200
    assert delivery_of(sent_sms) == ("read", "")


def test_the_same_receipt_twice_is_harmless(client, sent_sms):
    params = receipt(sent_sms.provider_message_id, "delivered")

    first, second = post(client, params), post(client, params)

    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json(), second.json()) == ({"updated": True}, {"updated": False})
    assert delivery_of(sent_sms) == ("delivered", "")
    assert Notification.objects.filter(delivery_status="delivered").count() == 1


def test_receipt_for_unknown_message_answers_200_and_logs_it(client, caplog, sent_sms):
    unknown = "SM" + "f" * 32

    with caplog.at_level(logging.INFO, logger="notifications.inbound.receipts"):
        response = post(client, receipt(unknown, "delivered"))

    assert response.status_code == 200
    assert response.json() == {"updated": False}
    assert [r for r in caplog.records if r.name == "notifications.inbound.receipts" and unknown in r.getMessage()]
    assert delivery_of(sent_sms) == ("", "")


@pytest.mark.parametrize("status", ["accepted", "scheduled", "canceled", "partially_delivered", "receiving"])
def test_every_twilio_status_is_answered_200(client, sent_sms, status):
    response = post(client, receipt(sent_sms.provider_message_id, status))

    assert response.status_code == 200


def test_canceled_is_recorded_as_the_row_delivery_status(client, sent_sms):
    assert post(client, receipt(sent_sms.provider_message_id, "canceled")).json() == {"updated": True}

    assert delivery_of(sent_sms) == ("canceled", "")


def test_partially_delivered_is_recorded_as_the_row_delivery_status(client, sent_sms):
    assert post(client, receipt(sent_sms.provider_message_id, "partially_delivered")).json() == {"updated": True}

    assert delivery_of(sent_sms) == ("partially_delivered", "")


def test_accepted_after_delivered_does_not_move_the_row_back(client, sent_sms):
    sid = sent_sms.provider_message_id
    assert post(client, receipt(sid, "delivered")).status_code == 200

    response = post(client, receipt(sid, "accepted"))

    assert response.json() == {"updated": False}
    assert delivery_of(sent_sms) == ("delivered", "")


def test_status_twilio_may_add_later_is_answered_200_and_logged_without_change(client, caplog, sent_sms):
    with caplog.at_level(logging.INFO, logger="notifications.inbound.receipts"):
        response = post(client, receipt(sent_sms.provider_message_id, "exploded"))

    assert response.status_code == 200
    assert response.json() == {"updated": False}
    assert [r for r in caplog.records if "exploded" in r.getMessage()]
    assert delivery_of(sent_sms) == ("", "")


def test_signed_receipt_without_status_is_400_naming_the_field(client, sent_sms):
    params = receipt(sent_sms.provider_message_id, "")
    del params["MessageStatus"], params["SmsStatus"]

    response = post(client, params)

    assert response.status_code == 400
    assert "MessageStatus" in response.json()


def test_signed_receipt_without_message_sid_is_400_naming_the_field(client, sent_sms):
    params = receipt(sent_sms.provider_message_id, "delivered")
    del params["MessageSid"], params["SmsSid"]

    response = post(client, params)

    assert response.status_code == 400
    assert "MessageSid" in response.json()


def post_raw(client, body, content_type=FORM):
    return client.post(PATH, body, content_type=content_type, headers={"X-Twilio-Signature": "c2lnbmF0dXJl"})


def test_oversized_body_is_a_400_naming_the_body(client, sent_sms):
    # Above Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB).
    body = urlencode(
        {"MessageSid": sent_sms.provider_message_id, "MessageStatus": "delivered", "Body": "x" * 3_000_000}
    )

    response = post_raw(client, body)

    assert response.status_code == 400
    assert "body" in response.json()
    assert delivery_of(sent_sms) == ("", "")


def test_body_with_too_many_fields_is_a_400_naming_the_body(client):
    response = post_raw(client, "&".join(f"f{i}=1" for i in range(5000)))

    assert response.status_code == 400
    assert "body" in response.json()


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b"\xff\xfe%ZZ&&==;MessageSid=%E0%A4%A&\x00", FORM),
        (b"MessageSid=SM1&MessageStatus=delivered", FORM + "; charset=latin-1"),
        (b'{"MessageSid": "SM1", "MessageStatus": "delivered"}', "application/json"),
        (b"--x\r\nnot really multipart", "multipart/form-data; boundary=x"),
        (b"--x\r\nnot really multipart", "multipart/form-data"),
    ],
    ids=["garbled-form", "not-utf8-charset", "json", "broken-multipart", "multipart-without-boundary"],
)
def test_malformed_body_is_a_client_error_with_json_body(client, body, content_type):
    response = post_raw(client, body, content_type)

    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == "application/json"
    assert response.json()


def test_receipt_signed_for_public_https_url_validates_behind_tls_proxy(client, settings, sent_sms):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = ["testserver", "public.example"]
    params = receipt(sent_sms.provider_message_id, "delivered")

    response = post(
        client, params, url=PUBLIC_URL, **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"}
    )

    assert response.status_code == 200
    assert delivery_of(sent_sms) == ("delivered", "")


def test_forwarded_headers_are_not_trusted_without_proxy_settings(client, settings, sent_sms):
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.USE_X_FORWARDED_HOST = False
    settings.ALLOWED_HOSTS = ["testserver", "public.example"]
    params = receipt(sent_sms.provider_message_id, "delivered")

    response = post(
        client, params, url=PUBLIC_URL, **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example"}
    )

    assert response.status_code == 403
    assert delivery_of(sent_sms) == ("", "")


def test_receipt_signed_for_configured_callback_url_validates(client, settings, sent_sms):
    settings.TWILIO_STATUS_CALLBACK_URL = "https://hooks.public.example/webhooks/twilio/status/"
    params = receipt(sent_sms.provider_message_id, "delivered")

    response = post(client, params, url=settings.TWILIO_STATUS_CALLBACK_URL)

    assert response.status_code == 200
    assert delivery_of(sent_sms) == ("delivered", "")


def test_receipt_signed_for_local_url_is_refused_when_callback_url_is_configured(client, settings, sent_sms):
    settings.TWILIO_STATUS_CALLBACK_URL = "https://hooks.public.example/webhooks/twilio/status/"

    response = post(client, receipt(sent_sms.provider_message_id, "delivered"), url=LOCAL_URL)

    assert response.status_code == 403


def test_every_text_message_carries_the_configured_status_callback(settings, book, make_patient, twilio):
    settings.TWILIO_STATUS_CALLBACK_URL = "https://hooks.public.example/webhooks/twilio/status/"
    appointment = book(make_patient(channels=["sms", "whatsapp"], phone="+14155550123"))
    rows = appointment.notifications.filter(kind="booking_confirmation")
    assert sorted(rows.values_list("channel", flat=True)) == ["sms", "whatsapp"]

    outcomes = [send_notification(row.pk) for row in rows]

    assert outcomes == ["sent", "sent"]
    assert sorted(r.to for r in twilio.requests) == ["+14155550123", "whatsapp:+14155550123"]
    callbacks = {r.to: r.form.get("StatusCallback") for r in twilio.requests}
    assert callbacks == {row.recipient: f"{settings.TWILIO_STATUS_CALLBACK_URL}?notification={row.pk}" for row in rows}


def test_no_status_callback_is_sent_when_none_is_configured(book, make_patient, twilio):
    appointment = book(make_patient(channels=["sms"], phone="+14155550123"))
    row = appointment.notifications.get(kind="booking_confirmation", channel="sms")

    assert send_notification(row.pk) == "sent"

    assert len(twilio.requests) == 1
    assert "StatusCallback" not in twilio.requests[0].form
