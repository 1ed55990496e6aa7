"""Writing a batch's outcomes: together in one transaction with the fallbacks of the rows that
died, through a database blip, and one row at a time when the database refuses the group for
anything but a blip, so that one bad row costs one row."""

import logging
import time

from django.db import InterfaceError, OperationalError, connection, transaction

from notifications.outbox.consent import after_dead
from notifications.outbox.models import NotificationStatus, record_outcomes

logger = logging.getLogger(__name__)

# Seconds between the tries of an outcome write, or a claim, the database refused: a blip, not an outage.
WRITE_RETRY_DELAYS = (0.2, 0.5, 1.0)
# The database errors that are a blip (a dropped connection, a failover), not a refusal.
BLIPS = (OperationalError, InterfaceError)


def record(outcomes):
    """Write the outcomes, and the email fallback of each text message that died, in one
    transaction: a crash between a death and its fallback would lose the fallback for good.
    Tried again through a database blip: an outcome not written leaves its row to the lease,
    and an email whose outcome was lost goes again. Refused for anything else (a value the
    database will not store), they are written one at a time, so only the bad row fails."""
    try:
        return through_blips(f"writing {len(outcomes)} outcome(s)", _record_together, outcomes)
    except BLIPS:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever one row holds must not strand the others
        if len(outcomes) == 1:
            return _record_refused(outcomes[0], exc)
        logger.exception("the %d outcome(s) were refused together; writing them one at a time", len(outcomes))
    won, written = set(), []
    try:
        for outcome in outcomes:
            won |= record([outcome])
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
        won = through_blips(f"writing the death of notification {notification.pk}", _record_together, [refused])
        outcome.fields = refused.fields
        return won
    except BLIPS:
        raise
    except Exception:  # noqa: BLE001 - one row's trouble stays its own
        logger.exception("notification %s: not even its death was stored; its lease returns it", notification.pk)
        return set()


def through_blips(what, function, *args):
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
