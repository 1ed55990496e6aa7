"""Webhook endpoints the clinic registers, and one delivery row per event and endpoint.

Why a table of its own rather than the Notification table with a new channel: a notification row
belongs to an appointment and a patient, carries a recipient snapshot, a rendered message, Twilio
receipts, fallbacks, quiet hours and rate limits, and every sweep, metric, digest and retention
rule reads it; an event for a clinic's system has none of that, and would need a null appointment
and an exception in each of those readers. What the two share is the discipline, and this row
keeps it, with the outbox's own statuses (NotificationStatus), its DEAD and RETRYING conditions,
its backoff (notifications/outbox/backoff.py) and its lease and attempts settings: written in the
transaction of the thing that happened, claimed by one conditional UPDATE stamping a fresh token
(one winner per row), an outcome written only while that token holds, an expired lease returning
the row, dead after the attempts, staff retry. Its own table also means its own sweep and queue:
a slow endpoint cannot hold a patient's message up.

Exactly once as the receiver sees it: `webhook_id` is made once with the row and sent on every
attempt with the same body, so a receiver that keeps the ids it has seen acts once; a 2xx is
recorded once (the outcome's conditional UPDATE)."""

import base64
import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils import timezone

from notifications.outbox.backoff import retry_delay
from notifications.outbox.models import DEAD, RETRYING, NotificationStatus

Status = NotificationStatus  # the outbox's statuses; a delivery is never cancelled or skipped


class EventType(models.TextChoices):
    APPOINTMENT_CONFIRMED = "appointment.confirmed"
    APPOINTMENT_CANCELLED = "appointment.cancelled"
    PATIENT_OPTED_OUT = "patient.opted_out"
    PATIENT_OPTED_IN = "patient.opted_in"
    NOTIFICATION_DEAD = "notification.dead"
    NOTIFICATION_DELIVERY = "notification.delivery"


def new_secret():
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes (the bytes sign)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_webhook_id():
    return f"msg_{uuid.uuid4().hex}"


class WebhookEndpoint(models.Model):
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)  # EventType values
    # Shown once, when the endpoint is made; kept to sign with (a hash could not sign).
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.url


class WebhookDeliveryQuerySet(models.QuerySet):
    def dead(self):
        return self.filter(DEAD)

    def retrying(self):
        return self.filter(RETRYING)

    def due(self, now):
        """Pending rows, and failed ones whose retry time has come (a dead row has none)."""
        return self.filter(models.Q(status=Status.PENDING) | models.Q(status=Status.FAILED, next_attempt_at__lte=now))

    def claim(self, now=None):
        """Move the due rows of this queryset to SENDING and return them: one conditional UPDATE
        (its WHERE re-checks that each row is still due, so of racing claimers one wins a row),
        stamping a fresh token that tells which rows this call won."""
        now = now or timezone.now()
        token = uuid.uuid4()
        claimed = self.due(now).update(
            status=Status.SENDING, claim_token=token, claimed_at=now, attempts=F("attempts") + 1, updated_at=now
        )
        if not claimed:
            return []
        return list(WebhookDelivery.objects.filter(claim_token=token).select_related("endpoint").order_by("id"))

    def reclaim_expired(self, now=None):
        """Rows whose claimer vanished (lease expired) go back to PENDING with the same webhook-id,
        or die when their attempts are spent. Re-checked by each UPDATE: a claimer that finished
        meanwhile keeps its outcome. Returns (returned, died)."""
        now = now or timezone.now()
        expired = self.filter(
            status=Status.SENDING, claimed_at__lt=now - timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS)
        )
        died = expired.filter(attempts__gte=settings.NOTIFICATIONS_MAX_ATTEMPTS).update(
            status=Status.FAILED,
            next_attempt_at=None,
            claim_token=None,
            died_at=now,
            last_error="lease expired on the last attempt",
            updated_at=now,
        )
        returned = expired.update(status=Status.PENDING, claim_token=None, updated_at=now)
        return returned, died

    def retry(self):
        """Staff re-drive failed deliveries: back in the queue with a fresh set of attempts and the
        same webhook-id and body (a receiver that had it already acts once)."""
        return self.filter(status=Status.FAILED).update(
            status=Status.PENDING, next_attempt_at=None, died_at=None, attempts=0, updated_at=timezone.now()
        )


class WebhookDelivery(models.Model):
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    webhook_id = models.CharField(max_length=40, unique=True, default=new_webhook_id, editable=False)
    # The exact bytes every attempt sends (the body is signed, and a retry must be the same event).
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    died_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = WebhookDeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"
        # Re-driving a dead delivery posts it again: not a plain edit.
        permissions = [("retry_webhookdelivery", "Can retry a failed webhook delivery")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=RETRYING, name="webhook_retry_due"),
            models.Index(fields=["claimed_at"], condition=models.Q(status="sending"), name="webhook_leases"),
            models.Index(fields=["created_at"], condition=models.Q(status="pending"), name="webhook_pending"),
        ]

    def __str__(self):
        return f"{self.event_type} to {self.endpoint_id} ({self.status})"

    def record_outcome(self, response_status=None, error="", now=None):
        """Write this claimed attempt's outcome, only while this claim still holds the row (a worker
        whose lease expired must not overwrite the next claimer's): sent on a 2xx, else failed, to
        be retried after the outbox's backoff while attempts are left, else dead. Returns whether
        it was written."""
        now = now or timezone.now()
        fields = {"response_status": response_status, "last_error": error, "updated_at": now, "claim_token": None}
        if response_status is not None and 200 <= response_status < 300:
            fields.update(status=Status.SENT, sent_at=now, last_error="")
        else:
            retry = self.attempts < settings.NOTIFICATIONS_MAX_ATTEMPTS
            fields.update(
                status=Status.FAILED,
                next_attempt_at=now + retry_delay(self.attempts) if retry else None,
                died_at=None if retry else now,
            )
        held = WebhookDelivery.objects.filter(pk=self.pk, status=Status.SENDING, claim_token=self.claim_token)
        written = bool(held.update(**fields))
        if written:
            for name, value in fields.items():
                setattr(self, name, value)
        return written

    def back_to_queue(self):
        """Too late in the lease to start a POST that could outlive it: pending again, uncounted."""
        held = WebhookDelivery.objects.filter(pk=self.pk, status=Status.SENDING, claim_token=self.claim_token)
        return held.update(
            status=Status.PENDING, claim_token=None, attempts=F("attempts") - 1, updated_at=timezone.now()
        )

    @property
    def is_dead(self):
        return self.status == Status.FAILED and self.next_attempt_at is None
