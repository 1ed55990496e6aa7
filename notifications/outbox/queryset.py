"""The rows' named queries and transitions in bulk: what is due, the claim, the withdrawal of rows
still to go, the lease's reclaim, a receipt's settlement, staff's retry. Each transition is one
conditional UPDATE whose WHERE re-checks the state it moves from, so racing callers cannot both
win a row."""

import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from notifications.outbox.raw_sql import claimed_rows
from notifications.outbox.states import CLAIMED_NOT_STARTED, DEAD, DELIVERY_RANK, RETRYING, NotificationStatus


class Claimed(list):
    """The rows a claim won, each with its appointment and patient as they were at read_at
    (time.monotonic(), taken before the read)."""

    def __init__(self, rows=(), read_at=None):
        super().__init__(rows)
        self.read_at = read_at


class NotificationQuerySet(models.QuerySet):
    def dead(self):
        """Failed for good (a permanent error, or attempts spent): nothing will send them."""
        return self.filter(DEAD)

    def retrying(self):
        """Failed for now, with a retry planned at next_attempt_at."""
        return self.filter(RETRYING)

    def due(self, now, include_failed=True):
        """Pending rows whose time has come and, with include_failed, failed rows whose retry
        time has come (a dead row has no next_attempt_at and is never due)."""
        # A pending row deferred for want of a rate-limit token is due again at its next_attempt_at.
        not_deferred = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
        condition = Q(status=NotificationStatus.PENDING, scheduled_for__lte=now) & not_deferred
        if include_failed:
            condition |= Q(status=NotificationStatus.FAILED, next_attempt_at__lte=now)
        return self.filter(condition)

    def claim(self, now=None, include_failed=True):
        """Move the due rows of this queryset to SENDING and return them.

        One UPDATE whose WHERE re-checks that each row is still due: on PostgreSQL a racing
        UPDATE blocks on the row lock and then skips the row it no longer matches; SQLite runs
        writes one at a time. The fresh token tells which rows this call won.
        """
        now = now or timezone.now()
        token = uuid.uuid4()
        claimed = self.due(now, include_failed).update(
            status=NotificationStatus.SENDING,
            claim_token=token,
            claimed_at=now,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
        if not claimed:
            return Claimed()
        # Read back with each row's appointment and patient, which serve a row handed out soon
        # after (delivery._CurrentState) instead of a read of their own.
        read_at = time.monotonic()
        rows = claimed_rows(self.model, token, now, NotificationStatus.SENDING.value, self.db)
        # Oldest first, as the sweep hands them out.
        return Claimed(sorted(rows, key=lambda n: (n.scheduled_for, n.pk)), read_at=read_at)

    def still_to_go(self):
        """Rows not yet out: pending ones, failed ones waiting for a retry, and claimed ones a
        worker holds whose send has not started (CLAIMED_NOT_STARTED)."""
        return self.filter(Q(status=NotificationStatus.PENDING) | RETRYING | CLAIMED_NOT_STARTED)

    def withdraw(self):
        """Rows still to go out become CANCELLED (the appointment moved or was cancelled, staff
        cancelled them). A claimed row whose send has not started is withdrawn too: its
        worker's record_send_starts then finds it no longer held and never sends it, so a move
        committed before a send starts always stops it, however old the worker's read of the
        appointment. Dead rows stay failed, a record of what did not reach the patient."""
        return self.still_to_go().update(
            status=NotificationStatus.CANCELLED, next_attempt_at=None, claim_token=None, updated_at=timezone.now()
        )

    def reclaim_expired(self, now=None):
        """Rows whose claimer vanished (lease expired) go back to PENDING, or die when their
        attempts are spent, so a poisonous row cannot kill workers forever. Returns the
        number returned and the ids of the rows that died."""
        now = now or timezone.now()
        expired = self.filter(
            status=NotificationStatus.SENDING,
            claimed_at__lt=now - timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS),
        )
        spent = list(expired.filter(attempts__gte=settings.NOTIFICATIONS_MAX_ATTEMPTS).values_list("id", flat=True))
        # A vanished claimer that had started the send may have sent the message before dying,
        # so the retry looks first; one that died before the send started sent nothing, and its
        # row goes back as it was (a look-up for a message never sent could only find another's).
        possibly_sent = Case(
            When(Q(possibly_sent=True) | Q(send_started_at__gte=F("claimed_at")), then=Value(True)),
            default=Value(False),
        )
        # Re-checked by the UPDATE: a claimer that finished meanwhile keeps its outcome.
        expired.filter(pk__in=spent).update(
            status=NotificationStatus.FAILED,
            next_attempt_at=None,
            claim_token=None,
            possibly_sent=possibly_sent,
            died_at=now,
            last_error="lease expired on the last attempt",
            updated_at=now,
        )
        returned = expired.update(
            status=NotificationStatus.PENDING, claim_token=None, possibly_sent=possibly_sent, updated_at=now
        )
        return returned, list(self.model.objects.filter(pk__in=spent).dead().values_list("id", flat=True))

    def record_delivery_status(self, provider_message_id, delivery_status, error_code=""):
        """Apply a delivery receipt unless the row already has a later one (receipts arrive
        twice and out of order). Returns the number of rows changed."""
        earlier = [status for status, rank in DELIVERY_RANK.items() if rank < DELIVERY_RANK[delivery_status]]
        return self.filter(provider_message_id=provider_message_id, delivery_status__in=earlier).update(
            delivery_status=delivery_status, delivery_error_code=error_code, updated_at=timezone.now()
        )

    def settle_by_receipt(self, provider_message_id, now=None):
        """A receipt for these rows (its callback URL names the row) is evidence that Twilio took
        the message: a row whose send went unanswered learns the sid Twilio gave it and, while
        it waits to be tried again, is dead or is still `sending` (its worker may have died
        before writing the outcome), becomes SENT, so no retry, lease or fallback acts on it
        again. Both UPDATEs re-check the row; a claim whose outcome comes later finds its token
        gone and writes nothing."""
        now = now or timezone.now()
        self.filter(provider_message_id="").update(provider_message_id=provider_message_id, updated_at=now)
        unanswered = Q(possibly_sent=True, status__in=[NotificationStatus.PENDING, NotificationStatus.FAILED])
        return (
            self.filter(provider_message_id=provider_message_id)
            .filter(unanswered | Q(status=NotificationStatus.SENDING))
            .update(
                status=NotificationStatus.SENT,
                possibly_sent=False,
                claim_token=None,
                next_attempt_at=None,
                died_at=None,
                sent_at=now,
                last_error="",
                error_code="",
                updated_at=now,
            )
        )

    def skip_unstarted(self, reason):
        """Claimed rows whose send has not started become SKIPPED with the reason (the patient
        opted out of their channel, their address was reported dead), so a worker holding them
        with an older read of the patient never sends them: its record_send_starts finds them no
        longer held."""
        return self.filter(CLAIMED_NOT_STARTED).update(
            status=NotificationStatus.SKIPPED, last_error=reason, claim_token=None, updated_at=timezone.now()
        )

    def put_back(self, not_before):
        """Claimed rows handed back unsent (their sends never started): PENDING again, the
        attempt not counted, not due before not_before."""
        return self.filter(status=NotificationStatus.SENDING).update(
            status=NotificationStatus.PENDING,
            attempts=F("attempts") - 1,
            claim_token=None,
            next_attempt_at=not_before,
            updated_at=timezone.now(),
        )

    def retry(self):
        """Staff put failed rows back in the queue with a fresh set of attempts. A failed row
        was due already, so its scheduled_for (part of the planned-once key) stays."""
        return self.filter(status=NotificationStatus.FAILED).update(
            status=NotificationStatus.PENDING, next_attempt_at=None, died_at=None, attempts=0, updated_at=timezone.now()
        )
