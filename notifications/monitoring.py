"""Figures about the queue, for the check command, the dashboard and health checks."""
from django.db.models import Count, Min, Q
from django.utils import timezone

from .models import Channel, Notification, NotificationStatus


def queue_summary():
    now = timezone.now()
    by_status = {status: {} for status in NotificationStatus.values}
    for row in Notification.objects.values("status", "channel").annotate(n=Count("id")).order_by():
        by_status[row["status"]][row["channel"]] = row["n"]
    due = Notification.objects.due(now)
    # A due row is due since scheduled_for (pending) or next_attempt_at (a retry).
    since = due.aggregate(
        pending=Min("scheduled_for", filter=Q(status=NotificationStatus.PENDING)),
        retry=Min("next_attempt_at", filter=Q(status=NotificationStatus.FAILED)),
    )
    oldest = min((t for t in since.values() if t), default=None)
    return {
        "channels": Channel.values,
        "by_status": by_status,
        "due": due.count(),
        "oldest_due_age_seconds": (now - oldest).total_seconds() if oldest else None,
    }
