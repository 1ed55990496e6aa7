from celery import shared_task
from django.conf import settings

from notifications import retention


@shared_task(name="notifications.purge_old")
def purge_old_notifications():
    return retention.purge(settings.NOTIFICATIONS_RETENTION_DAYS)
