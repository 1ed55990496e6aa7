"""Figures about the queue, for the check command, the dashboard and health checks."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from notifications.outbox.models import Channel, Notification, NotificationStatus
from notifications.outbox.undeliverable import UndeliverableAddress


def counts_by_status_and_channel(queryset):
    by_status = {status: {} for status in NotificationStatus.values}
    for row in queryset.values("status", "channel").annotate(n=Count("id")).order_by():
        by_status[row["status"]][row["channel"]] = row["n"]
    return by_status


def oldest_due_age(now):
    """Seconds since the longest-waiting due row fell due (scheduled_for, or next_attempt_at for a retry)."""
    since = Notification.objects.due(now).aggregate(
        pending=Min("scheduled_for", filter=Q(status=NotificationStatus.PENDING)),
        retry=Min("next_attempt_at", filter=Q(status=NotificationStatus.FAILED)),
    )
    oldest = min((t for t in since.values() if t), default=None)
    return (now - oldest).total_seconds() if oldest else None


def backlog_stalled(age):
    """Whether a due row that has waited `age` seconds (None when none is due) means the backlog
    stopped shrinking: nothing sends it (a sweep that can claim nothing, no worker, no beat)."""
    return age is not None and age > settings.NOTIFICATIONS_BACKLOG_STALLED_SECONDS


def backlog_state(now):
    """/healthz's word on the due backlog: "ok", or "stalled: …" naming the wait and the setting."""
    age = oldest_due_age(now)
    if not backlog_stalled(age):
        return "ok"
    return (
        f"stalled: the oldest due row has waited {age:.0f} s "
        f"(NOTIFICATIONS_BACKLOG_STALLED_SECONDS={settings.NOTIFICATIONS_BACKLOG_STALLED_SECONDS:g})"
    )


def queue_summary():
    now = timezone.now()
    return {
        "channels": Channel.values,
        "by_status": counts_by_status_and_channel(Notification.objects.all()),
        "due": Notification.objects.due(now).count(),
        "oldest_due_age_seconds": oldest_due_age(now),
    }


def dashboard_figures(hours=24, dead_rows=50):
    """The staff dashboard: the last day's rows by status and channel, the failure rate, the
    queue's oldest due row, and the dead rows with their errors."""
    now = timezone.now()
    recent = Notification.objects.filter(scheduled_for__gt=now - timedelta(hours=hours), scheduled_for__lte=now)
    by_status = counts_by_status_and_channel(recent)
    sent = sum(by_status[NotificationStatus.SENT].values())
    failed = sum(by_status[NotificationStatus.FAILED].values())
    dead = Notification.objects.dead()
    return {
        "hours": hours,
        "channels": Channel.values,
        "by_status": by_status,
        "failure_rate": failed / (sent + failed) if sent + failed else 0.0,
        "due": Notification.objects.due(now).count(),
        "oldest_due_age_seconds": oldest_due_age(now),
        "dead_count": dead.count(),
        "dead": list(dead.select_related("patient").order_by("-died_at", "-id")[:dead_rows]),
    }


def undeliverable_addresses():
    """The console's needs-attention list of email addresses an email service reported dead (a
    bounce, a rejection) that are still the patient's address: staff ask the patient for a new
    one, and a changed address drops off the list."""
    return (
        UndeliverableAddress.objects.filter(address=F("patient__email"))
        .select_related("patient", "notification")
        .order_by("-since", "-id")
    )
