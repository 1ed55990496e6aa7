"""Sending: claim a row, render it, hand it to its channel, record the outcome.

The callers (Celery tasks, the sweep, the management command) only choose which rows."""

import logging
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from itertools import islice

from django.conf import settings
from django.db import connections
from django.utils import timezone

from appointments.models import Appointment, AppointmentStatus
from notifications.channels import DeliveryError, SendSession, get_channel
from notifications.messages.catalog import refresh as refresh_templates
from notifications.messages.rendering import render
from notifications.outbox import writes
from notifications.outbox.models import (
    Channel,
    Notification,
    NotificationKind,
    NotificationStatus,
    record_send_starts,
)
from notifications.outbox.ratelimit import take_token, token_interval
from notifications.outbox.undeliverable import UndeliverableAddress, is_undeliverable

logger = logging.getLogger(__name__)

# Seconds an outcome may wait to be written with the others done meanwhile: one transaction
# for several outcomes, and a worker that dies loses hardly more than the sends in flight.
OUTCOME_WRITE_WINDOW = 0.05
# Seconds one read of the appointments (and patients) of the rows next in line serves their
# hand-outs: a cancel or a move committed longer than this before a row is handed to a send
# thread stops its send (one that lands during the send's own waits, a rate-limit token or a
# look-up at Twilio, does not).
CURRENT_STATE_MAX_AGE = 0.05


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
                    claimed = writes.through_blips("claiming the next batch", next_batch, len(running))
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
                    handed_out = writes.through_blips("recording the sends' starts", record_send_starts, taken)
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
    as one), and serves each of them for max_age: a row is read again only when its read is
    older than that. A move or cancel does not wait on it: it withdraws the claimed rows whose
    send has not started (NotificationQuerySet.withdraw)."""

    def __init__(self, lookahead, max_age=CURRENT_STATE_MAX_AGE):
        self.lookahead = lookahead
        self.max_age = max_age
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
        self.appointments = {pk: read for pk, read in self.appointments.items() if now - read[1] <= self.max_age}
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
        undeliverable = _undeliverable([n for n in rows if n.channel == Channel.EMAIL])
        for notification in rows:
            waiting.popleft()
            notification.address_undeliverable = (notification.patient_id, notification.recipient) in undeliverable
            if notification.appointment_id in self.appointments:
                notification.appointment = self.appointments[notification.appointment_id][0]
                notification.patient = notification.appointment.patient
            elif Notification.appointment.is_cached(notification):
                # Deleted since the claim read it: the send must find it gone, not use that copy.
                Notification.appointment.field.delete_cached_value(notification)
        return rows


def _undeliverable(email_rows):
    """(patient id, address) of these email rows' addresses an email service reported dead: read
    here, once for the rows handed out, as the send threads touch no database."""
    if not email_rows:
        return set()
    return set(
        UndeliverableAddress.objects.filter(
            patient_id__in={n.patient_id for n in email_rows}, address__in={n.recipient for n in email_rows}
        ).values_list("patient_id", "address")
    )


def _write(outcomes):
    """Record the outcomes, taking them off the list once they are, and log them: a soft time
    limit striking while they are logged must not have deliver's except write them again."""
    won = writes.record(outcomes)
    written = outcomes.copy()
    outcomes.clear()
    counts = Counter()
    for outcome in written:
        counts[outcome.fields["status"]] += 1
        _log(outcome, won)
    return counts


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
    if notification.channel == Channel.EMAIL and _address_undeliverable(notification):
        # Planned before an email service reported the address dead (a bounce, a rejection).
        return "email address reported undeliverable"
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


def _address_undeliverable(notification):
    """As read at the row's hand-out (_CurrentState.take), or now for a row not handed out so."""
    known = getattr(notification, "address_undeliverable", None)
    return is_undeliverable(notification.patient_id, notification.recipient) if known is None else known
