"""An email service's tracking events, as django-anymail verifies and normalizes them (its
webhooks at /anymail/<esp>/tracking/), applied as Twilio's receipts are: the row's delivery
status moves up only (DELIVERY_RANK), a repeated or late event changes nothing; a bounce or a
rejection marks the address undeliverable and sends the message once by a text channel; a
complaint or an unsubscribe opts the patient out of email."""

import logging

from anymail.signals import tracking
from django.db import transaction
from django.dispatch import receiver

from notifications.channels.email import NOTIFICATION_METADATA
from notifications.inbound.receipts import DELIVERED, keep_receipt
from notifications.outbox.consent import set_opted_out
from notifications.outbox.models import Channel, DeliveryStatus, Notification, NotificationStatus
from notifications.outbox.planning import plan_fallback
from notifications.outbox.signals import delivery_status_recorded
from notifications.outbox.undeliverable import mark_undeliverable

logger = logging.getLogger(__name__)

# anymail's event type → the row's delivery status (Twilio's words, which the ranking knows).
DELIVERY_STATUS = {
    "queued": DeliveryStatus.QUEUED,
    "deferred": DeliveryStatus.SENDING,  # the ESP keeps trying: not an outcome yet
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "autoresponded": DeliveryStatus.DELIVERED,  # an auto-reply proves the mailbox took it
    "complained": DeliveryStatus.DELIVERED,  # it arrived: the reader marked it as spam
    "bounced": DeliveryStatus.UNDELIVERED,
    "rejected": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "opened": DeliveryStatus.READ,
    "clicked": DeliveryStatus.READ,
}
# Events that say the address itself is dead, not this one message.
UNDELIVERABLE = ("bounced", "rejected")
# Events that say the message will never arrive: it goes once by a text channel.
NOT_DELIVERED = ("bounced", "rejected", "failed")
# Reasons that blame the sender or the way, not the address (an ISP blocking the clinic's
# domain, a message that timed out): the message falls back, the address stays usable.
NOT_THE_ADDRESS = ("blocked", "timed_out")
# Events in which the patient says: no more email.
OPT_OUT = ("complained", "unsubscribed")


# Postmark's bounces that anymail calls `bounced` though the mailbox may yet take the message.
POSTMARK_TEMPORARY = ("SoftBounce", "Transient", "DnsError")


@receiver(tracking, dispatch_uid="notifications.inbound.email_receipts")
def on_tracking_event(sender, event, esp_name, **kwargs):
    event_type = event.event_type
    if esp_name == "Postmark" and isinstance(event.esp_event, dict):
        if event_type == "bounced" and event.esp_event.get("Type") in POSTMARK_TEMPORARY:
            event_type = "deferred"
    apply_email_event(
        esp_name=esp_name,
        event_type=event_type,
        message_id=event.message_id,
        event_id=event.event_id,
        reject_reason=event.reject_reason,
        description=event.description or event.mta_response or "",
        notification_id=(event.metadata or {}).get(NOTIFICATION_METADATA),
        recipient=event.recipient,
    )


@transaction.atomic
def apply_email_event(
    *,
    esp_name,
    event_type,
    message_id,
    event_id=None,
    reject_reason=None,
    description="",
    notification_id=None,
    recipient=None,
):
    """Apply one tracking event; returns "repeated", "updated", "unchanged" or "unknown".
    notification_id: the row the message's metadata names (for an email whose outcome is not
    written yet, or never will be: its worker died), recipient: the address the event is about."""
    message_id = str(message_id or "").strip("<>")
    if not message_id:
        logger.info("%s %s event without a message id", esp_name, event_type)
        return "unknown"
    emails = Notification.objects.filter(channel=Channel.EMAIL)
    row = emails.filter(provider_message_id=message_id).select_related("patient").first()
    copy_of = None
    notification_id = str(notification_id or "")
    if row is None and recipient and notification_id.isascii() and notification_id.isdigit():
        # The service took this row's email (it reports on it): as a Twilio receipt does, the row
        # learns the message's id and, if its outcome was lost, is settled sent, not sent again.
        # Only a row whose send started, to the address the report is about: an id alone, which
        # counts up, must not let a report settle or opt out any row.
        named = emails.filter(pk=int(notification_id), recipient__iexact=recipient, send_started_at__isnull=False)
        named.settle_by_receipt(message_id)  # fills only an empty id: a row's own outcome stands
        row = emails.filter(provider_message_id=message_id).select_related("patient").first()
        if row is None:
            # An earlier copy of the row's message (sent again when its outcome was lost): what it
            # says of the address and the patient holds; the row's status follows its own message.
            copy_of = named.select_related("patient").first()
    about = row or copy_of
    token = f"{esp_name}:{event_id}" if event_id else ""
    if not keep_receipt(message_id, event_type, reject_reason or "", about.pk if about else None, token):
        return "repeated"
    if about is None:
        logger.info("%s %s event for unknown message %s", esp_name, event_type, message_id)
        return "unknown"
    status = DELIVERY_STATUS.get(event_type) if row is not None else None
    updated = 0
    if status is not None:
        updated = emails.record_delivery_status(message_id, status, (reject_reason or "")[:16])
    if updated:
        # Announced as a Twilio receipt's is (the clinic's systems hear notification.delivery).
        row.refresh_from_db(fields=["delivery_status", "delivery_error_code"])
        delivery_status_recorded.send(Notification, notification=row)
    if status in DELIVERED:
        # The email arrived after all (its row died of its lease first): its fallback goes no more.
        Notification.objects.filter(fallback_for=row, fallback_for__status=NotificationStatus.SENT).withdraw()
    if event_type in UNDELIVERABLE and reject_reason not in NOT_THE_ADDRESS:
        mark_undeliverable(about, event_type, reject_reason, description, esp_name)
    if row is not None and event_type in NOT_DELIVERED:
        # plan_fallback refuses a second fallback of a row, so a repeated event adds none.
        plan_fallback(row)
    if event_type in OPT_OUT:
        set_opted_out([about.patient_id], Channel.EMAIL, True)
    return "updated" if updated else "unchanged"
