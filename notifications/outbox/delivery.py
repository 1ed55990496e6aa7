"""Sending: claim a row, render it, hand it to its channel, record the outcome.

The callers (Celery tasks, the sweep, the management command) only choose which rows."""

import logging
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, connections, transaction
from django.utils import timezone

from appointments.models import Appointment, AppointmentStatus
from notifications.channels import DeliveryError, SendSession, get_channel
from notifications.messages.catalog import refresh as refresh_templates
from notifications.messages.rendering import render
from notifications.outbox.consent import after_dead
from notifications.outbox.models import (
    Notification,
    NotificationKind,
    NotificationStatus,
    record_outcomes,
    record_send_starts,
)
from notifications.outbox.planning import plan_fallback
from notifications.outbox.ratelimit import take_token, token_interval
from notifications.outbox.signals import notification_dead

logger = logging.getLogger(__name__)

# Seconds an outcome may wait to be written with the others done meanwhile: one transaction
# for several outcomes, and a worker that dies loses hardly more than the sends in flight.
OUTCOME_WRITE_WINDOW = 0.05
# Seconds one read of the appointments (and patients) of the rows next in line serves their
# hand-outs: a cancel or a move committed longer than this before a row is handed to a send
# thread stops its send (one that lands during the send's own waits, a rate-limit token or a
# look-up at Twilio, does not).
CURRENT_STATE_MAX_AGE = 0.05
# Seconds between the tries of an outcome write, or a claim, the database refused: a blip, not an outage.
WRITE_RETRY_DELAYS = (0.2, 0.5, 1.0)
# The database errors that are a blip (a dropped connection, a failover), not a refusal.
BLIPS = (OperationalError, InterfaceError)


def send_notification(notification_id):
    """Send one row if it is due and nobody else holds it; returns the outcome or None."""
    counts = send_notifications([notification_id])
    return next(iter(counts), None)


def send_notifications(notification_ids):
    """Send the due rows among these ids that nobody else holds (one claim for them all)."""
    return deliver(Notification.objects.filter(pk__in=notification_ids).claim())


def deliver(notifications, next_batch=None):
    """Send rows this process has claimed, record what happened, and log it. The sends run
    side by side in threads of this call (they wait on providers, not on the CPU). A row is
    handed to a thread only when one is free, with its appointment and patient as they were at
    most CURRENT_STATE_MAX_AGE before, so a cancel or a move that lands while the batch is under
    way stops the sends not yet started. Outcomes are written in groups, each as soon as it is
    OUTCOME_WRITE_WINDOW old, so a worker that dies loses hardly more than the sends in flight.

    next_batch (a sweep's): called with the count of sends in flight when every row is handed
    out and a thread is free, it claims more rows ([] when there are none), which follow on the
    same threads and connections instead of waiting for the slowest send before them."""
    counts = Counter()
    waiting = deque(notifications)
    threads = settings.NOTIFICATIONS_SEND_THREADS
    if next_batch is None:
        threads = max(1, min(threads, len(waiting)))
    current = _CurrentState(lookahead=threads)
    current.offer(notifications)
    # The session's connections close after the pool's threads are done with them.
    with SendSession() as session, ThreadPoolExecutor(threads, thread_name_prefix="send") as pool:
        running, unwritten, oldest = set(), [], 0.0
        try:
            while True:
                if not waiting and next_batch and len(running) < threads:
                    if unwritten:
                        # First: a row deferred back to the queue must be there for the claim.
                        counts.update(_write(unwritten))
                    claimed = _through_blips("claiming the next batch", next_batch, len(running))
                    current.offer(claimed)
                    waiting.extend(claimed)
                    next_batch = next_batch if waiting else None
                if not (waiting or running):
                    break
                # The clinic's templates, current to within a few seconds (a look at most every
                # few seconds), read here rather than by the send threads.
                refresh_templates()
                # A row's send starts at its hand-out: recorded first, so that only a row whose
                # send started is ever taken for possibly sent, and its look-up starts there.
                taken = current.take(waiting, threads - len(running))
                try:
                    handed_out = _through_blips("recording the sends' starts", record_send_starts, taken)
                except BaseException:
                    waiting.extendleft(reversed(taken))  # not handed out: back to the queue below
                    raise
                running |= {pool.submit(_attempt, n, session) for n in handed_out}
                timeout = max(0.0, oldest + OUTCOME_WRITE_WINDOW - time.monotonic()) if unwritten else None
                done, running = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
                if done and not unwritten:
                    oldest = time.monotonic()
                unwritten += [future.result() for future in done]
                if unwritten and (not running or time.monotonic() - oldest >= OUTCOME_WRITE_WINDOW):
                    counts.update(_write(unwritten))
        except BaseException:
            # The task's soft time limit, or outcomes the database would not take: hand out no
            # more rows (back to the queue, uncounted), let the sends in flight finish, write
            # what can be written, and give up. A row whose outcome is still unwritten stays
            # `sending`; its lease returns it, marked possibly sent.
            unwritten += [future.result() for future in wait(running).done]
            unwritten += [n.outcome(NotificationStatus.PENDING) for n in waiting]
            try:
                _write(unwritten)
            except Exception:  # noqa: BLE001 - the first error is the one to raise
                logger.exception("outcomes of %d notification(s) not written; their lease returns them", len(unwritten))
            raise
    return counts


class _CurrentState:
    """The appointments, with their patients, of the rows next in line, read again right before
    their hand-out (a row claimed minutes ago may have been cancelled since). A read takes the
    rows about to be handed out and the `lookahead` next (a claim's own read of its rows counts
    as one), and serves each of them for CURRENT_STATE_MAX_AGE: a row is read again only when
    its read is older than that."""

    def __init__(self, lookahead):
        self.lookahead = lookahead
        self.appointments = {}  # appointment id: (the appointment, when it was read)

    def offer(self, claimed):
        """Keep the appointments a claim read with its rows (models.Claimed), as of its read."""
        read_at = getattr(claimed, "read_at", None)
        for notification in claimed if read_at is not None else ():
            known = self.appointments.get(notification.appointment_id)
            if known is None or known[1] < read_at:
                self.appointments[notification.appointment_id] = (notification.appointment, read_at)

    def take(self, waiting, count):
        """Take up to count rows off the queue, each with its appointment and patient as they
        are now. The rows leave the queue only once read: a read that fails leaves them there."""
        rows = list(islice(waiting, count))
        now = time.monotonic()  # the age counts from before the query
        # Only reads still fresh are kept (nor do a sweep's thousands of rows pile up here).
        self.appointments = {
            pk: read for pk, read in self.appointments.items() if now - read[1] <= CURRENT_STATE_MAX_AGE
        }
        handed_out = {n.appointment_id for n in rows}
        if not handed_out <= self.appointments.keys():
            # All the rows handed out now are read again, the fresh ones too (a kept read would
            # age by the query's time), with the stale ones of the lookahead.
            next_in_line = islice(waiting, len(rows), len(rows) + self.lookahead)
            wanted = handed_out | {n.appointment_id for n in next_in_line if n.appointment_id not in self.appointments}
            read = Appointment.objects.select_related("patient").in_bulk(wanted)
            for pk in wanted:
                self.appointments.pop(pk, None)  # gone since: its earlier read must not serve
            for pk, appointment in read.items():
                self.appointments[pk] = (appointment, now)
        for notification in rows:
            waiting.popleft()
            if notification.appointment_id in self.appointments:
                notification.appointment = self.appointments[notification.appointment_id][0]
                notification.patient = notification.appointment.patient
            elif Notification.appointment.is_cached(notification):
                # Deleted since the claim read it: the send must find it gone, not use that copy.
                Notification.appointment.field.delete_cached_value(notification)
        return rows


def _write(outcomes):
    """Record the outcomes, taking them off the list once they are, and log them: a soft time
    limit striking while they are logged must not have deliver's except write them again."""
    won = _record(outcomes)
    written = outcomes.copy()
    outcomes.clear()
    counts = Counter()
    for outcome in written:
        counts[outcome.fields["status"]] += 1
        _log(outcome, won)
    return counts


def _record(outcomes):
    """Write the outcomes, and the email fallback of each text message that died, in one
    transaction: a crash between a death and its fallback would lose the fallback for good.
    Tried again through a database blip: an outcome not written leaves its row to the lease,
    and an email whose outcome was lost goes again. Refused for anything else (a value the
    database will not store), they are written one at a time, so only the bad row fails."""
    try:
        return _through_blips(f"writing {len(outcomes)} outcome(s)", _record_together, outcomes)
    except BLIPS:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever one row holds must not strand the others
        if len(outcomes) == 1:
            return _record_refused(outcomes[0], exc)
        logger.exception("the %d outcome(s) were refused together; writing them one at a time", len(outcomes))
    won, written = set(), []
    try:
        for outcome in outcomes:
            won |= _record([outcome])
            written.append(outcome)
    except BLIPS:
        # Off the caller's list, which it tries again: their attempts must not be recorded twice.
        for outcome in written:
            outcomes.remove(outcome)
        raise
    return won


def _record_together(outcomes):
    with transaction.atomic():
        won = record_outcomes(outcomes)
        for outcome in outcomes:
            if outcome.notification.pk in won and outcome.notification.is_dead:
                after_dead(outcome.notification)
    return won


def _record_refused(outcome, error):
    """One row's outcome the database refused: the row dies in its stead (code `internal`, the
    refusal kept), possibly sent when the refused outcome was a send; the outcome becomes that
    death, for the counts and the log. If even that is refused, the row is left to its lease."""
    notification = outcome.notification
    logger.error("notification %s: its outcome was refused; it is recorded dead", notification.pk, exc_info=error)
    refused = notification.outcome(
        NotificationStatus.FAILED,
        error=f"its outcome ({outcome.fields['status']}) was not stored: {error.__class__.__name__}: {error}",
        error_code="internal",
        permanent=True,
        possibly_sent=outcome.fields["status"] == NotificationStatus.SENT,
        now=outcome.now,
    )
    try:
        won = _through_blips(f"writing the death of notification {notification.pk}", _record_together, [refused])
        outcome.fields = refused.fields
        return won
    except BLIPS:
        raise
    except Exception:  # noqa: BLE001 - one row's trouble stays its own
        logger.exception("notification %s: not even its death was stored; its lease returns it", notification.pk)
        return set()


def _through_blips(what, function, *args):
    """function(*args), tried again for a few seconds when the database blips (a dropped
    connection, a failover), as a batch's writes and a sweep's claims are."""
    for delay in (*WRITE_RETRY_DELAYS, None):
        try:
            return function(*args)
        except BLIPS:
            if delay is None or connection.in_atomic_block:
                raise
            logger.warning("%s failed; trying again in %g s", what, delay, exc_info=True)
            connection.close()  # the next query connects afresh
            time.sleep(delay)


def _attempt(notification, session):
    """Render and hand one row to its channel, and say what became of it. Touches no database:
    the row arrives with its patient and appointment loaded and its send's start recorded, and
    the outcome is written by the caller. Whatever goes wrong in one row's attempt ends that row alone, never its batch."""
    try:
        return _send(notification, session)
    except Exception as exc:  # noqa: BLE001 - one bad row (a bug, a corrupt field) must not strand the others
        logger.exception("notification %s: unexpected error while sending", notification.pk)
        return notification.outcome(
            NotificationStatus.FAILED, error=f"{exc.__class__.__name__}: {exc}", error_code="internal"
        )
    finally:
        # The thread ends with its batch: a connection it opened (a channel or template that
        # reads the database) must not outlive it.
        connections.close_all()


def _send(notification, session):
    reason = reason_not_to_send(notification)
    if reason:
        return notification.outcome(NotificationStatus.SKIPPED, error=reason)
    if timezone.now() > notification.claimed_at + timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS / 2):
        # Too late in the lease to start a send that could outlive it (the row would be
        # reclaimed and sent again): back to the queue, uncounted.
        return notification.outcome(NotificationStatus.PENDING)
    if not take_token(notification.channel):
        # Not due again before the bucket refills a token: the sweep would claim it again at once.
        return notification.outcome(
            NotificationStatus.PENDING, not_before=timezone.now() + token_interval(notification.channel)
        )
    try:
        message = render(notification)
        provider_message_id = session.send(get_channel(notification.channel), notification, message)
    except DeliveryError as exc:
        return notification.outcome(
            NotificationStatus.FAILED,
            error=str(exc),
            error_code=exc.code,
            permanent=exc.permanent,
            possibly_sent=exc.possibly_sent,
        )
    return notification.outcome(NotificationStatus.SENT, provider_message_id=provider_message_id, message=message)


def _log(outcome, won):
    notification = outcome.notification
    status = outcome.fields["status"] if notification.pk in won else "lost"
    provider_message_id = outcome.fields.get("provider_message_id", "")
    latency_ms = round((outcome.now - notification.claimed_at).total_seconds() * 1000, 1)
    logger.info(
        "notification %s %s %s %s in %s ms%s",
        notification.pk,
        notification.channel,
        notification.kind,
        status,
        latency_ms,
        f", provider id {provider_message_id}" if provider_message_id else "",
        extra={
            "notification_id": notification.pk,
            "appointment_id": notification.appointment_id,
            "channel": notification.channel,
            "kind": notification.kind,
            "outcome": status,
            "attempt": notification.attempts,
            "error_code": outcome.fields.get("error_code", ""),
            "latency_ms": latency_ms,
            "provider_message_id": provider_message_id,
        },
    )


def reason_not_to_send(notification):
    """Why a claimed row must not go out after all, decided right before its send on the
    appointment and patient as they are then (a retry, a staff retry, a reclaimed lease, or a
    cancel that lands while the batch is under way can leave a row the appointment no longer
    wants)."""
    appointment = notification.appointment
    if notification.channel in notification.patient.opted_out:
        return f"patient opted out of {notification.channel}"
    if appointment.status == AppointmentStatus.CANCELLED and notification.kind != NotificationKind.CANCELLATION:
        return "appointment cancelled"
    if notification.context.get("sequence", appointment.sequence) < appointment.sequence:
        # Planned before the appointment's last change (a move): it names a time it no longer has.
        return "appointment moved"
    if notification.kind == NotificationKind.REMINDER:
        if appointment.starts_at <= timezone.now():
            return "appointment already past"
        if datetime.fromisoformat(notification.context["starts_at"]) != appointment.starts_at:
            return "appointment moved"
    return ""


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
