from celery import shared_task
from django.conf import settings

from notifications.inbound import receipts
from notifications.operations import retention


@shared_task(name="notifications.purge_old")
def purge_old_notifications():
    receipts.purge_receipts(settings.NOTIFICATIONS_RETENTION_DAYS)
    retention.purge_content(settings.NOTIFICATIONS_CONTENT_RETENTION_DAYS)
    return retention.purge(settings.NOTIFICATIONS_RETENTION_DAYS)
