"""Email addresses an email service reported undeliverable (a bounce, a rejection): planning and
sending pass them by, and the console lists them, until the patient's address changes (the
record is keyed by the address, so a new address is clean)."""

from django.db import models
from django.utils import timezone


class UndeliverableAddress(models.Model):
    patient = models.ForeignKey("appointments.Patient", on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=254)
    # anymail's event type (bounced, rejected) and its normalized reason (bounced, invalid, …).
    event = models.CharField(max_length=32)
    reason = models.CharField(max_length=32, blank=True)
    description = models.TextField(blank=True)
    esp = models.CharField(max_length=32, blank=True)
    notification = models.ForeignKey(
        "notifications.Notification", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    since = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-since", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "address"], name="undeliverable_address_once"),
        ]

    def __str__(self):
        return f"{self.address} ({self.event})"


def is_undeliverable(patient_id, address):
    """Whether an email service said this patient's address cannot be delivered to."""
    return bool(address) and UndeliverableAddress.objects.filter(patient_id=patient_id, address=address).exists()


def mark_undeliverable(notification, event, reason="", description="", esp=""):
    """Record the row's address as undeliverable (again: the first report stands). An email to
    it that a worker holds but has not started goes no more, whatever the worker read before."""
    rows = type(notification)._default_manager
    rows.filter(
        patient_id=notification.patient_id, channel=notification.channel, recipient=notification.recipient
    ).skip_unstarted("email address reported undeliverable")
    UndeliverableAddress.objects.get_or_create(
        patient_id=notification.patient_id,
        address=notification.recipient,
        defaults={
            "event": event,
            "reason": reason or "",
            "description": (description or "")[:1000],
            "esp": esp,
            "notification": notification,
        },
    )
