"""Twilio's delivery receipts, applied: the row's delivery status (never backwards), the sid
of a send whose answer was lost, and the email fallback of a message that failed after Twilio
accepted it. Any number of receipts, in any order, make at most one fallback."""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.channels import TEXT_CHANNELS
from notifications.inbound.models import DeliveryReceipt
from notifications.outbox.models import DELIVERY_RANK, DeliveryStatus, Notification, NotificationStatus
from notifications.outbox.planning import plan_fallback
from notifications.outbox.signals import delivery_status_recorded

logger = logging.getLogger(__name__)

# Receipts that say the message will never arrive (Twilio's error code says why).
NOT_DELIVERED = (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED)
# Receipts that say it arrived (a `sent` one does not: an `undelivered` can still follow).
DELIVERED = (DeliveryStatus.DELIVERED, DeliveryStatus.READ)


@transaction.atomic
def apply_receipt(message_sid, status, error_code="", notification_id=None, idempotency_token=""):
    """Apply one status callback; returns "repeated" (the same callback again, nothing done),
    "updated" (a row's delivery status moved) or "unchanged"."""
    if not keep_receipt(message_sid, status, error_code, notification_id, idempotency_token):
        return "repeated"
    if status not in DELIVERY_RANK:
        # Twilio adds statuses from time to time; refusing one would only make it retry.
        logger.info("delivery receipt for %s with a status we do not rank: %r", message_sid, status)
        return "unchanged"
    if notification_id is not None:
        Notification.objects.filter(pk=notification_id, channel__in=TEXT_CHANNELS).settle_by_receipt(message_sid)
    updated = Notification.objects.record_delivery_status(message_sid, status, error_code)
    if updated:
        for row in Notification.objects.filter(provider_message_id=message_sid, delivery_status=status):
            delivery_status_recorded.send(Notification, notification=row)
    if status in DELIVERED:
        # The message arrived after all (its row died of its lease first): its email goes no more.
        Notification.objects.filter(
            fallback_for__provider_message_id=message_sid, fallback_for__status=NotificationStatus.SENT
        ).withdraw()
    if status in NOT_DELIVERED:
        # plan_fallback refuses a second fallback of a row, so a repeated receipt adds none.
        failed = Notification.objects.filter(
            provider_message_id=message_sid, delivery_status__in=NOT_DELIVERED, channel__in=TEXT_CHANNELS
        )
        for row in failed.select_related("patient"):
            plan_fallback(row)
    if not updated and not Notification.objects.filter(provider_message_id=message_sid).exists():
        logger.info("delivery receipt for unknown message %s (%s)", message_sid, status)
    return "updated" if updated else "unchanged"


def keep_receipt(message_sid, status, error_code, notification_id, idempotency_token):
    """Keep the receipt (Twilio's, or an email service's event); False when its idempotency
    token was seen before."""
    known = notification_id is not None and Notification.objects.filter(pk=notification_id).exists()
    try:
        with transaction.atomic():
            DeliveryReceipt.objects.create(
                notification_id=notification_id if known else None,
                message_sid=message_sid,
                status=status,
                error_code=error_code,
                idempotency_token=idempotency_token or None,
            )
    except IntegrityError:
        return False
    return True


def purge_receipts(older_than_days, now=None):
    """Receipts past the retention go (Twilio retries a callback within hours, not months)."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    return DeliveryReceipt.objects.filter(received_at__lt=cutoff).delete()[0]
