from celery import shared_task

from notifications import delivery


@shared_task(name="notifications.send_notifications")
def send_notifications(notification_ids):
    """Send the rows one appointment event made due now (one broker message per event)."""
    outcomes = delivery.send_notifications(notification_ids)
    return {str(k): v for k, v in outcomes.items()}


@shared_task(name="notifications.send_notification")
def send_notification(notification_id):
    return delivery.send_notification(notification_id)
