from celery import shared_task

from notifications import delivery
from notifications.dispatch import SEND_NOTIFICATIONS


@shared_task(name=SEND_NOTIFICATIONS, bind=True)
def send_notifications(self, notification_ids):
    """Send the rows one appointment event made due now (one broker message per event), and
    others fallen due meanwhile, within the task's soft time limit (the message's, else its own)."""
    _, soft_time_limit = self.request.timelimit or (None, None)
    outcomes = delivery.send_event_notifications(notification_ids, time_limit=soft_time_limit or self.soft_time_limit)
    return {str(k): v for k, v in outcomes.items()}
