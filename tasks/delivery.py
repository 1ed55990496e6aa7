from celery import shared_task

from notifications.outbox import delivery
from notifications.outbox.dispatch import SEND_NOTIFICATIONS


@shared_task(name=SEND_NOTIFICATIONS)
def send_notifications(notification_ids):
    """Send the rows one appointment event made due now (one broker message per event)."""
    outcomes = delivery.send_notifications(notification_ids)
    return {str(k): v for k, v in outcomes.items()}
