"""Email receipts through django-anymail: our email goes out through anymail's own test backend
(which records the ESP's message id as a real ESP's does), then the email service's tracking
webhooks, in Postmark's and Mailgun's own payload shapes, are posted to anymail's views at
/anymail/<esp>/tracking/ with the authentication anymail verifies. Only the ESP's side (the
payload) is made up here; anymail parses, verifies and signals as in production."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.core import mail

from notifications.inbound.models import DeliveryReceipt
from notifications.models import Notification, UndeliverableAddress
from notifications.operations.monitoring import undeliverable_addresses
from notifications.outbox.delivery import reason_not_to_send, send_notifications
from notifications.outbox.planning import plan_fallback

WEBHOOK_SECRET = "esp:webhook-secret"
MAILGUN_SIGNING_KEY = "mailgun-signing-key-for-tests"


@pytest.fixture(autouse=True)
def anymail(settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}


def basic_auth(secret=WEBHOOK_SECRET):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def postmark(client, record, secret=WEBHOOK_SECRET):
    return client.post(
        "/anymail/postmark/tracking/", json.dumps(record), content_type="application/json", **basic_auth(secret)
    )


def postmark_bounce(message_id, email, bounce_type="HardBounce", bounce_id=None):
    """Postmark's bounce webhook, as its documentation shows it."""
    return {
        "RecordType": "Bounce",
        "ID": bounce_id or int(time.time() * 1000),
        "Type": bounce_type,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "",
        "MessageID": message_id,
        "Metadata": {},
        "ServerID": 23,
        "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "appointments@clinic.example",
        "BouncedAt": "2026-12-07T00:10:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Your appointment",
    }


def postmark_delivery(message_id, email):
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": email,
        "Tag": "",
        "DeliveredAt": "2026-12-07T00:09:54.9070259Z",
        "Details": "Test delivery webhook details",
        "Metadata": {},
    }


def postmark_complaint(message_id, email):
    return postmark_bounce(message_id, email, "SpamComplaint") | {"RecordType": "SpamComplaint", "TypeCode": 512}


def mailgun(client, event_data, key=MAILGUN_SIGNING_KEY):
    """Mailgun's JSON webhook: its event-data and the signature block anymail checks (HMAC-SHA256
    of timestamp and token with the webhook signing key), behind the same basic auth."""
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event_data}
    return client.post("/anymail/mailgun/tracking/", json.dumps(body), content_type="application/json", **basic_auth())


def mailgun_event(event, message_id, email, **extra):
    return {
        "event": event,
        "id": uuid.uuid4().hex,
        "timestamp": time.time(),
        "recipient": email,
        "message": {"headers": {"message-id": message_id, "to": email, "subject": "Your appointment"}},
        "tags": [],
        "user-variables": {},
    } | extra


def sent_email(book, make_patient, **patient_fields):
    """A booking confirmation sent by email through anymail; returns its row."""
    patient_fields.setdefault("channels", ["email"])
    appointment = book(make_patient(**patient_fields))
    row = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="email")
    send_notifications([row.pk])
    row.refresh_from_db()
    assert row.status == "sent", row.last_error
    return row


def test_the_esp_message_id_anymail_reports_is_what_the_row_records(book, make_patient):
    row = sent_email(book, make_patient)

    (message,) = mail.outbox
    assert row.provider_message_id == str(message.anymail_status.message_id)
    assert message.anymail_test_params["to"][0].addr_spec == row.recipient


def test_postmark_delivery_then_a_late_bounce_record_delivered_only(client, book, make_patient):
    row = sent_email(book, make_patient)

    assert postmark(client, postmark_delivery(row.provider_message_id, row.recipient)).status_code == 200
    assert postmark(client, postmark_delivery(row.provider_message_id, row.recipient)).status_code == 200

    row.refresh_from_db()
    assert row.delivery_status == "delivered"
    assert DeliveryReceipt.objects.filter(message_sid=row.provider_message_id, notification=row).count() == 2


def test_postmark_hard_bounce_marks_the_address_and_falls_back_to_sms_once(client, book, make_patient):
    row = sent_email(book, make_patient, phone="+14155550123")
    bounce = postmark_bounce(row.provider_message_id, row.recipient, bounce_id=4323372036854775807)

    answers = [postmark(client, bounce).status_code for _ in range(3)]
    answers.append(postmark(client, postmark_bounce(row.provider_message_id, row.recipient)).status_code)

    assert answers == [200] * 4
    row.refresh_from_db()
    assert (row.delivery_status, row.delivery_error_code) == ("undelivered", "bounced")
    # The same bounce thrice is kept once (its ID); a fourth report is kept but acts no more.
    assert DeliveryReceipt.objects.filter(message_sid=row.provider_message_id).count() == 2
    (fallback,) = Notification.objects.filter(fallback_for=row)
    assert (fallback.channel, fallback.recipient, fallback.status) == ("sms", "+14155550123", "pending")
    (marked,) = undeliverable_addresses()
    assert (marked.patient_id, marked.address, marked.event, marked.esp) == (
        row.patient_id,
        row.recipient,
        "bounced",
        "Postmark",
    )


def test_a_bounced_address_is_passed_by_until_the_patient_changes_it(client, book, make_patient):
    row = sent_email(book, make_patient, phone="")
    postmark(client, postmark_bounce(row.provider_message_id, row.recipient))
    patient = row.patient

    # No phone: nothing to fall back to; the address is listed for staff.
    assert not Notification.objects.filter(fallback_for=row).exists()
    again = book(patient)
    (skipped,) = Notification.objects.filter(appointment=again, kind="booking_confirmation")
    assert (skipped.status, skipped.last_error) == ("skipped", "email address reported undeliverable")
    # A reminder planned before the bounce is not sent to the dead address either.
    reminder = Notification.objects.filter(appointment=row.appointment, kind="reminder", channel="email").first()
    assert reason_not_to_send(reminder) == "email address reported undeliverable"

    patient.email = "new.address@example.com"
    patient.save()
    assert list(undeliverable_addresses()) == []
    third = book(patient)
    assert Notification.objects.get(appointment=third, kind="booking_confirmation").status == "pending"


def test_a_soft_bounce_defers_and_marks_nothing(client, book, make_patient):
    row = sent_email(book, make_patient)

    postmark(client, postmark_bounce(row.provider_message_id, row.recipient, bounce_type="SoftBounce"))

    row.refresh_from_db()
    assert row.delivery_status == "sending"
    assert not UndeliverableAddress.objects.exists()
    assert not Notification.objects.filter(fallback_for=row).exists()


def test_postmark_spam_complaint_opts_the_patient_out_of_email(client, book, make_patient):
    row = sent_email(book, make_patient, channels=["email", "sms"])

    assert postmark(client, postmark_complaint(row.provider_message_id, row.recipient)).status_code == 200

    row.patient.refresh_from_db()
    assert row.patient.opted_out == ["email"]
    row.refresh_from_db()
    assert row.delivery_status == "delivered"
    assert not UndeliverableAddress.objects.exists()


def test_postmark_webhook_without_the_secret_is_refused_and_changes_nothing(client, book, make_patient):
    row = sent_email(book, make_patient)

    answer = postmark(client, postmark_bounce(row.provider_message_id, row.recipient), secret="esp:wrong")

    assert answer.status_code == 400
    row.refresh_from_db()
    assert row.delivery_status == ""
    assert not DeliveryReceipt.objects.exists()


def test_mailgun_permanent_failure_after_delivery_marks_the_address_and_falls_back(client, book, make_patient):
    row = sent_email(book, make_patient, channels=["email"], phone="+14155550124")
    message_id = f"<{row.provider_message_id}>"  # Mailgun's headers keep the brackets anymail adds
    failed = mailgun_event(
        "failed",
        message_id,
        row.recipient,
        severity="permanent",
        reason="bounce",
        **{"delivery-status": {"code": 550, "message": "5.1.1 No such user", "description": "No such user"}},
    )

    assert mailgun(client, mailgun_event("delivered", message_id, row.recipient)).status_code == 200
    assert mailgun(client, failed).status_code == 200

    row.refresh_from_db()
    # delivered and bounced share the final rank: the first to arrive stands, the second is kept.
    assert row.delivery_status == "delivered"
    assert UndeliverableAddress.objects.filter(patient=row.patient, address=row.recipient).exists()
    assert Notification.objects.get(fallback_for=row).channel == "sms"


def test_mailgun_rejected_and_complained(client, book, make_patient):
    rejected_row = sent_email(book, make_patient, phone="")
    complained_row = sent_email(book, make_patient)

    rejected = mailgun_event("rejected", rejected_row.provider_message_id, rejected_row.recipient)
    rejected["reject"] = {"reason": "Recipient is on the suppression list"}
    assert mailgun(client, rejected).status_code == 200
    assert mailgun(client, mailgun_event("complained", complained_row.provider_message_id, "x")).status_code == 200

    rejected_row.refresh_from_db()
    assert rejected_row.delivery_status == "failed"
    (marked,) = undeliverable_addresses()
    assert (marked.address, marked.event, marked.description) == (
        rejected_row.recipient,
        "rejected",
        "Recipient is on the suppression list",
    )
    complained_row.patient.refresh_from_db()
    assert complained_row.patient.opted_out == ["email"]


def test_mailgun_webhook_with_a_bad_signature_is_refused(client, book, make_patient):
    row = sent_email(book, make_patient)

    answer = mailgun(client, mailgun_event("failed", row.provider_message_id, row.recipient), key="not-the-key")

    assert answer.status_code == 400
    assert not DeliveryReceipt.objects.exists()


def test_an_event_for_a_message_we_never_sent_is_kept_and_acts_on_nothing(client, make_patient):
    assert postmark(client, postmark_bounce("6f1b0d1e-0000-0000-0000-000000000000", "x@example.com")).status_code == 200

    assert DeliveryReceipt.objects.get().notification is None
    assert not UndeliverableAddress.objects.exists()


def test_a_text_message_does_not_fall_back_to_an_undeliverable_email(client, book, make_patient):
    row = sent_email(book, make_patient, channels=["email"], phone="")
    postmark(client, postmark_bounce(row.provider_message_id, row.recipient))
    patient = row.patient
    patient.channels = ["sms"]
    patient.phone = "+14155550125"
    patient.save()
    appointment = book(patient)
    sms = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="sms")

    # The SMS dies: its email fallback would go to the address that bounced, so none is planned.
    assert plan_fallback(Notification.objects.select_related("patient").get(pk=sms.pk)) is None


def test_a_block_of_the_clinics_mail_falls_back_but_leaves_the_address_usable(client, book, make_patient):
    row = sent_email(book, make_patient, phone="+14155550126")

    postmark(client, postmark_bounce(row.provider_message_id, row.recipient, bounce_type="Blocked"))

    row.refresh_from_db()
    assert (row.delivery_status, row.delivery_error_code) == ("failed", "blocked")
    assert not UndeliverableAddress.objects.exists()
    assert Notification.objects.get(fallback_for=row).channel == "sms"


def test_a_report_on_an_email_whose_outcome_was_lost_finds_its_row_by_the_metadata(client, book, make_patient):
    row = sent_email(book, make_patient)
    (message,) = mail.outbox
    assert message.anymail_test_params["metadata"] == {"notification": str(row.pk)}
    esp_id = row.provider_message_id
    # As if its worker had died after the send: still `sending`, no message id recorded.
    Notification.objects.filter(pk=row.pk).update(status="sending", provider_message_id="")

    delivered = postmark_delivery(esp_id, row.recipient) | {"Metadata": {"notification": str(row.pk)}}
    assert postmark(client, delivered).status_code == 200

    row.refresh_from_db()
    assert (row.status, row.provider_message_id, row.delivery_status) == ("sent", esp_id, "delivered")


def test_a_report_naming_only_a_row_id_settles_and_opts_out_nothing(book, make_patient):
    # Review of this round: an event with the row id in its metadata and no recipient, for a
    # message id made up, opted the row's patient out of email.
    from notifications.inbound.email_receipts import apply_email_event

    patient = make_patient(channels=["email"], email="victim@example.com")
    row = book(patient).notifications.filter(channel="email").first()

    apply_email_event(esp_name="Postmark", event_type="complained", message_id="forged-1", notification_id=str(row.pk))
    apply_email_event(
        esp_name="Postmark",
        event_type="complained",
        message_id="forged-2",
        notification_id=str(row.pk),
        recipient="victim@example.com",  # right address, but the row's send never started
    )

    patient.refresh_from_db()
    row.refresh_from_db()
    assert ("email" in patient.opted_out, row.provider_message_id, row.status) == (False, "", "pending")


def test_a_report_whose_row_id_is_not_an_ascii_number_is_unknown_not_a_500(db):
    from notifications.inbound.email_receipts import apply_email_event

    answer = apply_email_event(
        esp_name="Postmark", event_type="delivered", message_id="m-1", notification_id="²", recipient="a@example.com"
    )

    assert answer == "unknown"


@pytest.mark.parametrize(
    ("anymail", "refused"),
    [({}, True), ({"WEBHOOK_SECRET": "hooks:secret"}, False), ({"MAILGUN_WEBHOOK_SIGNING_KEY": "key"}, False)],
)
def test_deploy_check_refuses_an_email_service_whose_webhooks_anyone_can_post(settings, anymail, refused):
    from notifications.operations.checks import email_service_webhooks_are_authenticated

    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = anymail

    assert [e.id for e in email_service_webhooks_are_authenticated(None)] == (["notifications.E012"] if refused else [])
