from celery import shared_task

from notifications.outbox import sweeps


@shared_task(name="notifications.sweep_due", bind=True)
def sweep_due_notifications(self):
    """Beat's replacement for the seed's cron job: send due pending rows and due retries, in
    batches that can finish before the task's soft time limit (the message's, else its own)."""
    _, soft_time_limit = self.request.timelimit or (None, None)
    report = sweeps.sweep(time_limit=soft_time_limit or self.soft_time_limit)
    return str(report)


@shared_task(name="notifications.reclaim_expired_leases")
def reclaim_expired_leases():
    return sweeps.reclaim_expired_leases()
