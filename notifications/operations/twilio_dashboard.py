"""The dashboard's Twilio sections: how many of the coming days' appointments are confirmed,
opt-outs per channel, and the last day's text-message failures by Twilio error code."""

from collections import Counter
from datetime import timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from appointments.models import Appointment, AppointmentStatus, Patient
from notifications.channels import TEXT_CHANNELS
from notifications.channels.twilio_errors import meaning
from notifications.inbound.models import InboundAction, InboundMessage
from notifications.inbound.receipts import NOT_DELIVERED
from notifications.outbox.models import Channel, Notification, NotificationStatus


def confirmations(days, now):
    """Per day of the next `days`: the appointments still on, and how many are confirmed."""
    upcoming = Appointment.objects.filter(
        status=AppointmentStatus.SCHEDULED, starts_at__gt=now, starts_at__lte=now + timedelta(days=days)
    )
    per_day = (
        upcoming.annotate(day=TruncDate("starts_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(total=Count("id"), confirmed=Count("id", filter=Q(confirmed_at__isnull=False)))
        .order_by("day")
    )
    rows = [(row["day"], row["total"], row["confirmed"]) for row in per_day]
    return {
        "days": days,
        "per_day": rows,
        "total": sum(total for _, total, _ in rows),
        "confirmed": sum(confirmed for _, _, confirmed in rows),
    }


def opt_outs(since):
    """Per channel: patients opted out now, and the opt-out replies since `since`."""
    now_out = Counter()
    for channels in Patient.objects.exclude(opted_out=[]).values_list("opted_out", flat=True).iterator():
        now_out.update(set(channels))
    replies = Counter(
        dict(
            InboundMessage.objects.filter(action=InboundAction.OPTED_OUT, received_at__gt=since)
            .values_list("channel")
            .annotate(n=Count("id"))
        )
    )
    return [(channel, now_out[channel], replies[channel]) for channel in Channel.values]


def failures_by_code(since):
    """Text messages that failed since `since` by error code: refused sends and failed
    receipts, each with what the code means, most frequent first."""
    text_rows = Notification.objects.filter(channel__in=TEXT_CHANNELS, updated_at__gt=since)
    refused = Counter(
        dict(
            text_rows.filter(status=NotificationStatus.FAILED)
            .exclude(error_code="")
            .values_list("error_code")
            .annotate(n=Count("id"))
        )
    )
    undelivered = Counter(
        dict(
            text_rows.filter(delivery_status__in=NOT_DELIVERED)
            .exclude(delivery_error_code="")
            .values_list("delivery_error_code")
            .annotate(n=Count("id"))
        )
    )
    codes = sorted(set(refused) | set(undelivered), key=lambda code: (-(refused[code] + undelivered[code]), code))
    return [(code, meaning(code), refused[code], undelivered[code]) for code in codes]


def twilio_figures(hours=24, confirmation_days=7):
    now = timezone.now()
    since = now - timedelta(hours=hours)
    return {
        "confirmations": confirmations(confirmation_days, now),
        "opt_outs": opt_outs(since),
        "failures": failures_by_code(since),
    }
