from celery import shared_task
from django.conf import settings

from integrations import delivery
from integrations.events import DELIVER_WEBHOOKS


# On the `webhooks` queue (config/settings.py's CELERY_TASK_ROUTES), served by workers of their
# own: a slow endpoint never holds a worker that sends patients' messages.
@shared_task(name=DELIVER_WEBHOOKS)
def deliver_webhooks(delivery_ids):
    """Post the delivery rows one event wrote."""
    return delivery.deliver_ids(delivery_ids)


@shared_task(name="integrations.sweep_webhooks", bind=True)
def sweep_webhooks(self):
    """Beat: post deliveries whose publish was lost and retries whose time has come, in batches
    that can finish before the task's soft time limit."""
    _, soft_time_limit = self.request.timelimit or (None, None)
    return delivery.sweep(time_limit=soft_time_limit or self.soft_time_limit or settings.CELERY_TASK_SOFT_TIME_LIMIT)


@shared_task(name="integrations.reclaim_webhook_leases")
def reclaim_webhook_leases():
    """Beat: deliveries whose worker vanished go back to the queue, with the same webhook-id."""
    return delivery.reclaim_expired_leases()


@shared_task(name="integrations.purge_old_webhook_deliveries")
def purge_old_webhook_deliveries():
    """Nightly on beat: finished deliveries past NOTIFICATIONS_RETENTION_DAYS go."""
    return delivery.purge(settings.NOTIFICATIONS_RETENTION_DAYS)
