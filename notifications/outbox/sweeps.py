"""The sweeps: beat's (and the command's) way to the rows an event did not send at once. Claim
the due rows in batches no larger than the time left allows, send them on delivery's threads,
and return the rows whose claimer vanished when their lease runs out."""

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.outbox.delivery import deliver
from notifications.outbox.models import Notification
from notifications.outbox.planning import plan_fallback
from notifications.outbox.signals import notification_dead

logger = logging.getLogger(__name__)


def reclaim_expired_leases():
    """Return rows whose claimer vanished to the queue; those out of attempts die and, like
    any dead text message, fall back to email, in the same transaction as their death."""
    with transaction.atomic():
        returned, dead_ids = Notification.objects.reclaim_expired()
        for notification in Notification.objects.filter(pk__in=dead_ids).select_related("patient"):
            notification_dead.send(Notification, notification=notification)
            plan_fallback(notification)
    return {"returned": returned, "dead": len(dead_ids)}


def claim_due_batch(limit, include_failed=True):
    """Claim up to `limit` due rows, oldest first. On PostgreSQL, SKIP LOCKED lets racing
    sweepers take disjoint batches instead of queueing on each other's rows; the claim's
    conditional UPDATE is what guarantees one winner per row on every database."""
    now = timezone.now()
    with transaction.atomic():
        candidates = list(
            Notification.objects.due(now, include_failed)
            .order_by("scheduled_for", "id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        if not candidates:
            return []
        return Notification.objects.filter(pk__in=candidates).claim(now, include_failed)


@dataclass
class SweepReport:
    outcomes: Counter = field(default_factory=Counter)
    left: int = 0

    def __str__(self):
        o = self.outcomes
        return f"sent={o['sent']} failed={o['failed']} skipped={o['skipped']} left={self.left}"


def sweep(max_rows=None, include_failed=True, time_limit=None):
    """Send due rows in batches until none are left, max_rows were handled, or the next batch
    might not finish within time_limit seconds (the task's soft time limit): a batch holds no
    more rows than the threads could send in the time left, each send as slow as a send can be
    (a thread still busy with a send of the batch before has a round less). Each batch is
    claimed as the one before is all handed out, and goes on the same threads."""
    report = SweepReport()
    started = time.monotonic()
    handled = 0

    def next_batch(in_flight=0):
        nonlocal handled
        limit = settings.NOTIFICATIONS_SWEEP_BATCH_SIZE
        if max_rows is not None:
            limit = min(limit, max_rows - handled)
        if time_limit is not None:
            capacity = sweep_capacity(time_limit - (time.monotonic() - started))
            if capacity < 1 and not handled and not in_flight:
                # What check E005 refuses at start, said by each sweep of a worker, which runs no check that stops it.
                logger.error(
                    "this sweep can claim no row: its time limit (%g s) holds no send of %g s (notifications.E005)",
                    time_limit,
                    longest_send(),
                )
            limit = min(limit, capacity - in_flight)
        batch = claim_due_batch(limit, include_failed) if limit > 0 else []
        handled += len(batch)
        return batch

    first = next_batch()
    if first:
        report.outcomes.update(deliver(first, next_batch))
    report.left = Notification.objects.due(timezone.now(), include_failed).count()
    return report


def sweep_capacity(seconds):
    """The rows a sweep's threads can send in these seconds, each send as slow as it can be."""
    return settings.NOTIFICATIONS_SEND_THREADS * int(seconds // longest_send())


def longest_send():
    """Seconds one send can take: a wait for a rate-limit token, then the provider's timeout,
    twice for a text message that looks at Twilio before it sends."""
    return settings.RATE_LIMIT_MAX_WAIT + max(2 * settings.TWILIO_HTTP_TIMEOUT, settings.EMAIL_TIMEOUT)


def due_rows(max_rows, include_failed=True):
    """What a sweep would send now, without claiming anything (for --dry-run)."""
    return list(
        Notification.objects.due(timezone.now(), include_failed)
        .select_related("patient")
        .order_by("scheduled_for", "id")[:max_rows]
    )
