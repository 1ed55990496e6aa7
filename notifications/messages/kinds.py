"""What a message is about: the kinds of notice an appointment event or a reminder sends."""

from django.db import models


class NotificationKind(models.TextChoices):
    BOOKING_CONFIRMATION = "booking_confirmation"
    REMINDER = "reminder"
    RESCHEDULE = "reschedule"
    CANCELLATION = "cancellation"
