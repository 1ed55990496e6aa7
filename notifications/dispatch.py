import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(notification_ids):
    """Hand rows due now to the broker once the planning transaction has committed."""
    if notification_ids:
        transaction.on_commit(lambda: enqueue(notification_ids))


def enqueue(notification_ids):
    from tasks.delivery import send_notifications

    try:
        send_notifications.apply_async((notification_ids,), retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the rows are safe in the table
        # The booking has committed and must still succeed: the sweep sends these rows.
        logger.warning("broker unavailable (%s); %d notification(s) wait for the sweep", exc, len(notification_ids))
