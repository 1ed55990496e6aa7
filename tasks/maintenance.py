from celery import shared_task
from django.conf import settings

from notifications import delivery


@shared_task(name="notifications.sweep_due")
def sweep_due_notifications():
    """Beat's replacement for the seed's cron job: send due pending rows and due retries."""
    # Stop claiming well before the lease runs out, so no claimed row outlives its lease.
    report = delivery.sweep(time_budget=settings.NOTIFICATIONS_LEASE_SECONDS / 3)
    return str(report)


@shared_task(name="notifications.reclaim_expired_leases")
def reclaim_expired_leases():
    return delivery.reclaim_expired_leases()
