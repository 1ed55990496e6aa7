"""What Twilio posts to our webhooks, kept: delivery receipts (their idempotency tokens make a
repeated callback a no-op) and the messages patients send us (staff read them in the admin)."""

from django.db import models
from django.utils import timezone

from config.logging import mask_phone_numbers


class DeliveryReceipt(models.Model):
    """One status callback as Twilio posted it."""

    notification = models.ForeignKey(
        "notifications.Notification", null=True, blank=True, on_delete=models.SET_NULL, related_name="receipts"
    )
    # Twilio's MessageSid, or an email service's message id (anymail's tracking events).
    message_sid = models.CharField(max_length=255)
    status = models.CharField(max_length=32)
    error_code = models.CharField(max_length=16, blank=True)
    # Twilio's I-Twilio-Idempotency-Token: the same token again is the same callback retried.
    idempotency_token = models.CharField(max_length=128, null=True, blank=True, unique=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self):
        return f"{self.message_sid} {self.status}" + (f" ({self.error_code})" if self.error_code else "")


class InboundAction(models.TextChoices):
    """What a patient's message did."""

    CONFIRMED = "confirmed"
    NOTHING_TO_CONFIRM = "nothing_to_confirm"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    HELP = "help"
    KEPT_FOR_STAFF = "kept_for_staff"
    UNKNOWN_SENDER = "unknown_sender"


class InboundMessage(models.Model):
    """An SMS or WhatsApp message a patient (or an unknown number) sent to the clinic."""

    patient = models.ForeignKey(
        "appointments.Patient", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_messages"
    )
    channel = models.CharField(max_length=16)
    from_number = models.CharField(max_length=64)
    to_number = models.CharField(max_length=64, blank=True)
    body = models.TextField(blank=True)
    # Twilio's MessageSid: a webhook Twilio retries is the same message, handled once.
    message_sid = models.CharField(max_length=34, unique=True)
    action = models.CharField(max_length=32, choices=InboundAction.choices)
    appointment = models.ForeignKey(
        "appointments.Appointment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self):
        # The number masked: lists and logs show a message's name (config/logging.py masks the same way).
        return f"{self.channel} from {mask_phone_numbers(self.from_number)}: {self.body[:40]}"
