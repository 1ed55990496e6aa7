"""The row's statuses, the receipts' delivery statuses and their ranking, and the two kinds of
failed row: the vocabulary of the state machine (models.py), its queries (queryset.py) and its
callers."""

from django.db import models
from django.db.models import F, Q


class NotificationStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class DeliveryStatus(models.TextChoices):
    """Twilio's delivery receipts (every MessageStatus it documents for outbound messages)."""

    QUEUED = "queued"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"
    PARTIALLY_DELIVERED = "partially_delivered"
    READ = "read"


# A receipt only moves a row up this ranking (receipts arrive twice and out of order); the
# final outcomes share a rank, so the first of them to arrive stands.
_RANKED = [
    [DeliveryStatus.ACCEPTED, DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED],
    [DeliveryStatus.SENDING],
    [DeliveryStatus.SENT],
    [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.CANCELED,
        DeliveryStatus.PARTIALLY_DELIVERED,
    ],
    [DeliveryStatus.READ],
]
DELIVERY_RANK = {"": 0} | {status: rank for rank, statuses in enumerate(_RANKED, start=1) for status in statuses}


# The two kinds of failed row, told apart by whether a retry is planned. A dead row stays
# failed: a record of what did not reach the patient, until staff retry it.
DEAD = Q(status=NotificationStatus.FAILED, next_attempt_at__isnull=True)
RETRYING = Q(status=NotificationStatus.FAILED, next_attempt_at__isnull=False)

# Claimed rows whose send has not started under their claim (record_send_starts sets
# send_started_at at the hand-out, never before claimed_at). A possibly sent row keeps an older
# start, so it counts as started: its look-up or send may be under way.
CLAIMED_NOT_STARTED = Q(status=NotificationStatus.SENDING, possibly_sent=False) & (
    Q(send_started_at__isnull=True) | Q(send_started_at__lt=F("claimed_at"))
)

# Rows whose message may be at the provider with no outcome recorded: the send started under
# the row's claim and has no answer yet, or the row may have been sent and waits to look for it
# (notifications/outbox/starts.py keeps one such row a text recipient). A dead row, or one
# withdrawn, looks for nothing again.
IN_DOUBT = Q(status=NotificationStatus.SENDING, send_started_at__gte=F("claimed_at")) | (
    Q(possibly_sent=True) & (Q(status__in=[NotificationStatus.PENDING, NotificationStatus.SENDING]) | RETRYING)
)
