"""The daily digest of failures for staff: the rows that died in the last day, with their
errors, and the failures per channel. Sent by beat's notifications.send_staff_digest
(tasks/digest.py), and only when there is something to report: a row died, or a send
attempt failed, in the period."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone

from config.logging import mask_phone_numbers
from notifications.operations.monitoring import counts_by_status_and_channel
from notifications.outbox.models import Channel, Notification, NotificationAttempt, NotificationStatus

logger = logging.getLogger(__name__)

DASHBOARD_PATH = "/admin/notifications/dashboard/"


def recipients():
    """NOTIFICATIONS_DIGEST_RECIPIENTS when set, else every active staff user with an email."""
    configured = [address for address in settings.NOTIFICATIONS_DIGEST_RECIPIENTS if address]
    if configured:
        return configured
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    return list(dict.fromkeys(staff.order_by("pk").values_list("email", flat=True)))


def digest_figures(hours=24, dead_rows=100, now=None):
    """What the digest reports about the last `hours`.

    A row that died in the window is dead now with its died_at in it (a staff retry makes it
    pending again, so it is no longer dead). Failures per channel count failed send attempts
    (transient ones included) and the rows that died."""
    now = now or timezone.now()
    since = now - timedelta(hours=hours)
    dead = Notification.objects.dead().filter(died_at__gt=since, died_at__lte=now)
    dead_by_channel = counts_by_status_and_channel(dead)[NotificationStatus.FAILED]
    attempts = (
        NotificationAttempt.objects.filter(
            outcome=NotificationStatus.FAILED, finished_at__gt=since, finished_at__lte=now
        )
        .values("notification__channel")
        .annotate(n=Count("id"))
        .order_by()
    )
    failed_attempts = {row["notification__channel"]: row["n"] for row in attempts}
    channels = [
        {
            "channel": channel,
            "failed_attempts": failed_attempts.get(channel, 0),
            "dead": dead_by_channel.get(channel, 0),
        }
        for channel in Channel.values
    ]
    dead_count = sum(dead_by_channel.values())
    return {
        "hours": hours,
        "since": since,
        "until": now,
        "channels": channels,
        "failed_attempts": sum(failed_attempts.values()),
        "dead_count": dead_count,
        "dead": [_dead_row(row) for row in dead.select_related("patient").order_by("-died_at", "-id")[:dead_rows]],
        "dead_not_listed": max(0, dead_count - dead_rows),
    }


def _dead_row(row):
    """What the digest shows of a dead row; like the logs, no full phone number."""
    return {
        "id": row.pk,
        "appointment_id": row.appointment_id,
        "patient": str(row.patient),
        "kind": row.kind,
        "channel": row.channel,
        "attempts": row.attempts,
        "died_at": row.died_at,
        "error_code": row.error_code,
        "error": mask_phone_numbers(row.last_error),
    }


def has_news(figures):
    return bool(figures["dead_count"] or figures["failed_attempts"])


def build_message(figures, to):
    context = {
        **figures,
        "clinic_name": settings.CLINIC_NAME,
        "dashboard_path": DASHBOARD_PATH,
    }
    subject = " ".join(render_to_string("email/staff_digest_subject.txt", context).split())
    message = EmailMultiAlternatives(subject=subject, body=render_to_string("email/staff_digest.txt", context), to=to)
    message.attach_alternative(render_to_string("email/staff_digest.html", context), "text/html")
    return message


def send_digest(hours=24, now=None):
    """Email the digest to the staff when the last `hours` had failures. Returns a short report."""
    figures = digest_figures(hours=hours, now=now)
    if not has_news(figures):
        logger.info("staff digest: no failures in the last %d hours, nothing sent", hours)
        return {"sent": False, "reason": "nothing to report"}
    to = recipients()
    if not to:
        logger.warning(
            "staff digest: %d dead row(s) and %d failed attempt(s) but no recipient "
            "(set NOTIFICATIONS_DIGEST_RECIPIENTS or give a staff user an email)",
            figures["dead_count"],
            figures["failed_attempts"],
        )
        return {"sent": False, "reason": "no recipients"}
    build_message(figures, to).send()
    logger.info(
        "staff digest sent to %d recipient(s): %d dead row(s), %d failed attempt(s)",
        len(to),
        figures["dead_count"],
        figures["failed_attempts"],
    )
    return {
        "sent": True,
        "recipients": len(to),
        "dead": figures["dead_count"],
        "failed_attempts": figures["failed_attempts"],
    }
