"""Receipts that act: the stand-in Twilio posts its signed status callbacks to our real webhook
(a live server), the real worker sends. A message that Twilio accepted and then could not
deliver falls back to email exactly once, however often and in whatever order its receipts
come; a receipt for a send whose answer was lost records the sid, so the retry sends nothing."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from twilio.request_validator import RequestValidator

from notifications.models import DeliveryReceipt, Notification
from notifications.outbox import delivery, sweeps
from tasks.retention import purge_old_notifications
from tests.conftest import settled, wait_for

PHONE = "+14155550163"
PATH = "/webhooks/twilio/status/"


@pytest.fixture
def callbacks_to_us(settings, live_server):
    """Twilio's status callbacks reach our webhook on the live server."""
    settings.TWILIO_STATUS_CALLBACK_URL = f"{live_server.url}{PATH}"
    return settings.TWILIO_STATUS_CALLBACK_URL


def sms_booking(book, make_patient):
    return book(make_patient(channels=["sms"], phone=PHONE))


def sms_row(appointment):
    (row,) = settled(appointment.notifications.filter(kind="booking_confirmation", channel="sms"))
    return row


def fallback_of(row):
    wait_for(lambda: Notification.objects.filter(fallback_for=row).exists())
    (fallback,) = settled(Notification.objects.filter(fallback_for=row))
    return fallback


@pytest.mark.parametrize("code", ["30003", "30005", "30006", "30007"])
def test_undelivered_receipt_falls_back_to_email_once_keeping_the_code(
    celery_worker, callbacks_to_us, twilio, book, make_patient, code
):
    twilio.script(PHONE, ("undelivered", code))
    appointment = sms_booking(book, make_patient)
    row = sms_row(appointment)
    assert row.status == "sent"

    fallback = fallback_of(row)

    row.refresh_from_db()
    assert (row.delivery_status, row.delivery_error_code) == ("undelivered", code)
    assert (fallback.channel, fallback.status, fallback.kind) == ("email", "sent", "booking_confirmation")
    assert [m.to for m in mail.outbox] == [[appointment.patient.email]]
    assert [p.status for p in twilio.webhooks.posted] == [200, 200]


def test_failed_receipts_repeated_and_out_of_order_fall_back_once(
    celery_worker, callbacks_to_us, twilio, book, make_patient
):
    row = sms_row(sms_booking(book, make_patient))
    sid = row.provider_message_id

    answers = [
        twilio.post_status(sid, status, code).status
        for status, code in [
            ("failed", "30007"),
            ("sent", None),
            ("failed", "30007"),
            ("undelivered", "30003"),
            ("queued", None),
        ]
    ]

    assert answers == [200] * 5
    fallback_of(row)
    row.refresh_from_db()
    assert (row.delivery_status, row.delivery_error_code) == ("failed", "30007")
    assert Notification.objects.filter(channel="email").count() == 1
    assert len(mail.outbox) == 1


def test_delivered_receipt_makes_no_fallback(celery_worker, callbacks_to_us, twilio, book, make_patient):
    row = sms_row(sms_booking(book, make_patient))

    assert twilio.post_status(row.provider_message_id, "delivered").status == 200
    assert twilio.post_status(row.provider_message_id, "undelivered", "30003").status == 200

    row.refresh_from_db()
    assert row.delivery_status == "delivered"
    assert not Notification.objects.filter(channel="email").exists()


def test_whatsapp_text_twilio_fails_with_63016_falls_back_to_email(
    celery_worker, callbacks_to_us, settings, twilio, book, make_patient
):
    # Our side believes the patient wrote within 24 hours; Twilio's session says otherwise.
    settings.TWILIO_CONTENT_SIDS = {}
    patient = make_patient(channels=["whatsapp"], phone=PHONE, whatsapp_last_inbound_at=timezone.now())
    appointment = book(patient)
    (row,) = settled(appointment.notifications.filter(channel="whatsapp", kind="booking_confirmation"))
    assert row.status == "sent"

    fallback = fallback_of(row)

    row.refresh_from_db()
    assert (row.delivery_status, row.delivery_error_code) == ("failed", "63016")
    assert fallback.status == "sent" and len(mail.outbox) == 1


def test_receipt_for_a_send_whose_answer_was_lost_records_its_sid_and_sent(
    transactional_db, callbacks_to_us, settings, twilio, book, make_patient
):
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    settings.NOTIFICATIONS_BACKOFF_BASE = 0
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 0
    twilio.script(PHONE, ("slow", 1))
    row = sms_booking(book, make_patient).notifications.get(kind="booking_confirmation")
    assert delivery.send_notification(row.pk) == "failed"
    (accepted,) = twilio.accepted

    assert twilio.post_status(accepted["sid"], "sent").status == 200

    row.refresh_from_db()
    assert (row.status, row.provider_message_id, row.possibly_sent) == ("sent", accepted["sid"], False)
    assert sweeps.sweep().outcomes["sent"] == 0
    assert twilio.lookups == [] and len(twilio.accepted) == 1


def test_the_same_callback_again_is_a_no_op(celery_worker, callbacks_to_us, twilio, book, make_patient):
    row = sms_row(sms_booking(book, make_patient))

    first = twilio.post_status(row.provider_message_id, "delivered", token="token-1")
    again = twilio.post_status(row.provider_message_id, "delivered", token="token-1")

    assert (first.status, again.status) == (200, 200)
    assert '"repeated": true' in again.body and '"repeated"' not in first.body
    assert DeliveryReceipt.objects.filter(message_sid=row.provider_message_id).count() == 1


def test_status_callback_naming_a_row_with_a_bad_id_is_400(client, settings, twilio):
    settings.TWILIO_STATUS_CALLBACK_URL = f"https://hooks.example{PATH}"
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "sent"}
    url = f"https://hooks.example{PATH}?notification=x1"
    signature = RequestValidator(twilio.auth_token).compute_signature(url, params)

    response = client.post(f"{PATH}?notification=x1", params, headers={"X-Twilio-Signature": signature})

    assert response.status_code == 400
    assert "notification" in response.json()


def test_receipts_past_the_retention_are_purged_by_the_retention_task(db, settings):
    settings.NOTIFICATIONS_RETENTION_DAYS = 30
    old = DeliveryReceipt.objects.create(
        message_sid="SM" + "1" * 32, status="delivered", received_at=timezone.now() - timedelta(days=31)
    )
    recent = DeliveryReceipt.objects.create(message_sid="SM" + "2" * 32, status="delivered")

    purge_old_notifications()

    assert list(DeliveryReceipt.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not DeliveryReceipt.objects.filter(pk=old.pk).exists()
