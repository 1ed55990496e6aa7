import logging

from celery import current_app
from django.db import transaction
from kombu import pools

logger = logging.getLogger(__name__)

# Publishing tries the broker once: when Redis refuses, kombu would otherwise retry the
# connection on its own schedule (2 s and more) while the booking waits.
ONE_TRY = {"max_retries": 0}


def enqueue_on_commit(notification_ids):
    """Hand rows due now to the broker once the planning transaction has committed."""
    if notification_ids:
        transaction.on_commit(lambda: enqueue(notification_ids))


def enqueue(notification_ids):
    from tasks.delivery import send_notifications

    # Connections are kept between publishes in kombu's pool for this broker and these options
    # (emptied in a forked child): opening one per publish (two TCP connects, redis-py's
    # handshakes, a queue declaration) cost about as much CPU as the rest of the booking. One
    # that fails is closed, not put back, so the next publish connects afresh, once.
    one_try = current_app.connection_for_write(transport_options=ONE_TRY)
    try:
        with pools.connections[one_try].acquire(block=True) as connection:
            send_notifications.apply_async((notification_ids,), connection=connection, retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the rows are safe in the table
        # The booking has committed and must still succeed: the sweep sends these rows.
        logger.warning("broker unavailable (%s); %d notification(s) wait for the sweep", exc, len(notification_ids))
