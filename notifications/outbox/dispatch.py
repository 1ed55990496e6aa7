"""Hand rows to the broker. The core publishes by task name, so notifications/ never imports
tasks/ (the tasks are thin wrappers over the core, and import it)."""

import functools
import logging

from celery import current_app
from django.db import transaction
from kombu import pools

logger = logging.getLogger(__name__)

# The task that sends the rows one event made due now (tasks/delivery.py).
SEND_NOTIFICATIONS = "notifications.send_notifications"

# Publishing tries the broker once: when Redis refuses, kombu would otherwise retry the
# connection on its own schedule (2 s and more) while the booking waits.
ONE_TRY = {"max_retries": 0}


def enqueue_on_commit(notification_ids):
    """Hand rows due now to the broker once the planning transaction has committed."""
    if notification_ids:
        transaction.on_commit(lambda: enqueue(notification_ids))


def enqueue(notification_ids):
    """Publish one send_notifications task for these rows, or leave them to the sweep."""
    publish(SEND_NOTIFICATIONS, notification_ids, "notification(s)")


def publish(task_name, ids, what):
    """Publish one task named task_name for these rows' ids (its route, config/settings.py's
    CELERY_TASK_ROUTES, picks the queue), or leave them to their sweep."""
    # Connections stay in kombu's pool between publishes, since connecting per publish cost as
    # much as the booking itself (docs/PERFORMANCE.md); a failed one is dropped, not put back.
    broker = _broker(current_app._get_current_object(), current_app.conf.broker_write_url)
    try:
        with pools.connections[broker].acquire(block=True) as connection:
            current_app.send_task(task_name, args=(ids,), connection=connection, retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure: the rows are safe in the table
        # The booking has committed and must still succeed: the sweep sends these rows.
        logger.warning("broker unavailable (%s); %d %s wait for the sweep", exc, len(ids), what)


@functools.lru_cache(maxsize=8)
def _broker(app, url):
    """The connection settings for publishing to the broker at url (broker_write_url, which is
    broker_url unless set apart), made once per app and URL (making them cost a fifth of a
    publish); the connections themselves are kombu's pool's."""
    return app.connection_for_write(url, transport_options=ONE_TRY)
