"""The notification row and its state machine.

Every status change is one of the named transitions below, written as a conditional UPDATE so
that two workers, the beat sweep and the management command can race on a row and exactly one
of them wins. A claim stamps the row with a fresh token; the outcome of a send is recorded only
while the row still carries that token, so a worker whose lease expired cannot overwrite the
outcome of the worker that took the row over.
"""

import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from notifications.channels.choices import Channel
from notifications.messages.kinds import NotificationKind
from notifications.outbox.backoff import retry_delay
from notifications.outbox.raw_sql import claimed_rows, insert, statements, storable


class NotificationStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class DeliveryStatus(models.TextChoices):
    """Twilio's delivery receipts (every MessageStatus it documents for outbound messages)."""

    QUEUED = "queued"
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"
    PARTIALLY_DELIVERED = "partially_delivered"
    READ = "read"


# A receipt only moves a row up this ranking (receipts arrive twice and out of order); the
# final outcomes share a rank, so the first of them to arrive stands.
_RANKED = [
    [DeliveryStatus.ACCEPTED, DeliveryStatus.SCHEDULED, DeliveryStatus.QUEUED],
    [DeliveryStatus.SENDING],
    [DeliveryStatus.SENT],
    [
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.CANCELED,
        DeliveryStatus.PARTIALLY_DELIVERED,
    ],
    [DeliveryStatus.READ],
]
DELIVERY_RANK = {"": 0} | {status: rank for rank, statuses in enumerate(_RANKED, start=1) for status in statuses}


# The two kinds of failed row, told apart by whether a retry is planned. A dead row stays
# failed: a record of what did not reach the patient, until staff retry it.
DEAD = Q(status=NotificationStatus.FAILED, next_attempt_at__isnull=True)
RETRYING = Q(status=NotificationStatus.FAILED, next_attempt_at__isnull=False)


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
        """Rows not yet out: pending ones, and failed ones waiting for a retry."""
        return self.filter(Q(status=NotificationStatus.PENDING) | RETRYING)

    def withdraw(self):
        """Rows still to go out become CANCELLED (the appointment moved or was cancelled):
        pending ones, and failed ones waiting for a retry. Dead rows stay failed, a record of
        what did not reach the patient."""
        return self.still_to_go().update(
            status=NotificationStatus.CANCELLED, next_attempt_at=None, updated_at=timezone.now()
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
        return returned, list(Notification.objects.filter(pk__in=spent).dead().values_list("id", flat=True))

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

    def retry(self):
        """Staff put failed rows back in the queue with a fresh set of attempts. A failed row
        was due already, so its scheduled_for (part of the planned-once key) stays."""
        return self.filter(status=NotificationStatus.FAILED).update(
            status=NotificationStatus.PENDING, next_attempt_at=None, died_at=None, attempts=0, updated_at=timezone.now()
        )


class Notification(models.Model):
    appointment = models.ForeignKey("appointments.Appointment", on_delete=models.CASCADE, related_name="notifications")
    patient = models.ForeignKey("appointments.Patient", on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    scheduled_for = models.DateTimeField()
    # Snapshots taken at planning: a later edit of the patient or appointment cannot change
    # a message already planned.
    recipient = models.CharField(max_length=254, blank=True)
    context = models.JSONField(default=dict)
    # A fallback row (email standing in for an SMS that failed for good) is keyed by that SMS.
    fallback_for = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="fallback"
    )

    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the row died (see DEAD); updated_at moves on with later receipts and edits.
    died_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    # An attempt may have reached the provider without its outcome coming back (no answer, a
    # dropped connection, an expired lease): the message may be out, so every retry of a text
    # message looks for it at Twilio first, until an attempt's outcome is known.
    possibly_sent = models.BooleanField(default=False)
    # When this row's send started, written before the request: only a row whose send started
    # can be possibly sent, and a look-up for its message reaches back to here, no further. A
    # possibly sent row keeps the start of its earliest attempt that may be out.
    send_started_at = models.DateTimeField(null=True, blank=True)
    # Unique (notification_provider_message_once): a provider message belongs to one row.
    provider_message_id = models.CharField(max_length=255, blank=True)
    delivery_status = models.CharField(max_length=32, choices=DeliveryStatus.choices, blank=True)
    delivery_error_code = models.CharField(max_length=16, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # What the message said, as sent: wording is taken at send time, so a later edit of the
    # clinic's templates leaves the record of a message already sent as it was.
    rendered_subject = models.TextField(blank=True)
    rendered_text = models.TextField(blank=True)
    rendered_html = models.TextField(blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["scheduled_for", "id"]
        # Putting a failed row back in the queue sends a message again: not a plain edit.
        permissions = [("retry_notification", "Can retry a failed notification")]
        constraints = [
            # Planning is idempotent: a replayed event finds its rows already there, and a
            # message goes by email once, fallbacks included. Cancelled rows step aside so
            # that moving an appointment back to a time plans it afresh.
            models.UniqueConstraint(
                fields=["appointment", "kind", "channel", "scheduled_for"],
                condition=~Q(status="cancelled"),
                name="notification_planned_once",
            ),
            # Own identity: a row is recorded sent only with a message its own attempt created,
            # so no two rows ever share one (a receipt or a fallback would act on both).
            models.UniqueConstraint(
                fields=["provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="notification_provider_message_once",
            ),
        ]
        indexes = [
            # The sweep's two questions, each answered from a small partial index however
            # much sent history the table holds.
            models.Index(fields=["scheduled_for"], condition=Q(status="pending"), name="notification_pending_due"),
            models.Index(
                fields=["next_attempt_at"],
                condition=RETRYING,
                name="notification_retry_due",
            ),
            models.Index(fields=["claimed_at"], condition=Q(status="sending"), name="notification_leases"),
            models.Index(fields=["patient", "channel", "-created_at"], name="notification_inbox"),
        ]

    def __str__(self):
        return f"{self.kind} by {self.channel} to {self.recipient or '?'} ({self.status})"

    @classmethod
    def planned(cls, *, skip_reason="", **fields):
        """A new row: PENDING, or SKIPPED with the reason when it must never be sent."""
        if skip_reason:
            return cls(status=NotificationStatus.SKIPPED, last_error=skip_reason, **fields)
        return cls(status=NotificationStatus.PENDING, **fields)

    # Outcomes of a claimed send. Each applies only while this claim still holds the row.
    def outcome(
        self,
        status,
        *,
        error="",
        error_code="",
        provider_message_id="",
        permanent=False,
        possibly_sent=False,
        message=None,
        now=None,
        not_before=None,
    ):
        """The Outcome of this claimed send: sent, failed (transient errors come back after a
        backoff while attempts are left, the rest die), skipped, or deferred back to pending
        (not due again before not_before, when given). A row that may have been sent stays so
        through failures, until one is sent."""
        now = now or timezone.now()
        if status == NotificationStatus.PENDING:
            # Deferred (no rate-limit token, or too late in the lease): back in the queue, the
            # attempt not counted, the last error kept.
            fields = {"status": status, "attempts": self.attempts - 1}
            if not_before is not None:
                fields["next_attempt_at"] = not_before
            return Outcome(self, fields, now)
        fields = {"status": status, "last_error": error, "error_code": error_code}
        if status == NotificationStatus.SENT:
            fields.update(sent_at=now, provider_message_id=provider_message_id, possibly_sent=False)
            if self.provider_message_id and provider_message_id != self.provider_message_id:
                # A new message (a staff retry of a row whose earlier one failed): the receipts
                # of the old one say nothing of it, and would outrank its own.
                fields.update(delivery_status="", delivery_error_code="")
            if message is not None:
                fields.update(rendered_subject=message.subject, rendered_text=message.text, rendered_html=message.html)
        elif status == NotificationStatus.FAILED:
            retry = not permanent and self.attempts < settings.NOTIFICATIONS_MAX_ATTEMPTS
            fields["next_attempt_at"] = now + retry_delay(self.attempts) if retry else None
            fields["died_at"] = None if retry else now
            fields["possibly_sent"] = self.possibly_sent or possibly_sent
        return Outcome(self, fields, now)

    def mark_sent(self, provider_message_id=""):
        return self.outcome(NotificationStatus.SENT, provider_message_id=provider_message_id).record()

    def mark_failed(self, error, *, permanent, error_code=""):
        return self.outcome(NotificationStatus.FAILED, error=error, error_code=error_code, permanent=permanent).record()

    def mark_skipped(self, reason):
        return self.outcome(NotificationStatus.SKIPPED, error=reason).record()

    @property
    def is_dead(self):
        """This row's side of DEAD."""
        return self.status == NotificationStatus.FAILED and self.next_attempt_at is None

    def mark_read(self):
        if self.read_at is None:
            self.read_at = timezone.now()
            Notification.objects.filter(pk=self.pk, read_at__isnull=True).update(read_at=self.read_at)


class Outcome:
    """What became of one claimed send, before it is written."""

    def __init__(self, notification, fields, now):
        self.notification, self.fields, self.now = notification, fields, now

    def record(self):
        return bool(record_outcomes([self]))


def record_send_starts(notifications, now=None):
    """Record, before their requests go out, that the sends of these claimed rows start (one
    UPDATE); returns the rows their claims still hold, the only ones to send. A row possibly
    sent already keeps the start of its earliest attempt that may be out, so that its look-up
    reaches back to it."""
    if not notifications:
        return []
    now = now or timezone.now()
    # Conditional on the claims' tokens, like every outcome: a row reclaimed meanwhile is not ours.
    held = Notification.objects.filter(
        pk__in=[n.pk for n in notifications],
        status=NotificationStatus.SENDING,
        claim_token__in={n.claim_token for n in notifications},
    )
    kept = Q(possibly_sent=True, send_started_at__isnull=False)
    updated = held.update(send_started_at=Case(When(kept, then=F("send_started_at")), default=Value(now)))
    if updated < len(notifications):
        still = set(held.values_list("pk", flat=True))
        notifications = [n for n in notifications if n.pk in still]
    for n in notifications:
        if not (n.possibly_sent and n.send_started_at):
            n.send_started_at = now
    return notifications


@transaction.atomic(savepoint=False)  # in the caller's transaction when there is one
def record_outcomes(outcomes):
    """Write the outcomes of claimed sends: one locking SELECT finds the rows still held by
    these claims (a row whose lease expired and was claimed again is not ours to write), one
    batch of UPDATEs by primary key writes them, one INSERT adds their attempts to the
    history. Returns the ids won. A row deleted meanwhile (its appointment deleted in the
    admin) gets no attempt: one would fail the whole write, the other rows' outcomes with it."""
    if not outcomes:
        return set()
    present, won = _still_held(outcomes)
    winners = [o for o in outcomes if o.notification.pk in won]
    _honour_erasures(winners)
    shapes = {}
    for outcome in winners:
        shapes.setdefault(tuple(sorted(outcome.fields)), []).append(outcome)
    for columns, group in shapes.items():
        _update_each(columns, group)
    _insert_attempts(
        [o for o in outcomes if o.notification.pk in present and o.fields["status"] != NotificationStatus.PENDING]
    )
    for o in winners:
        for name, value in o.fields.items():
            setattr(o.notification, name, value)
    return won


# An outcome write runs every few sends, so its three statements are raw SQL: built by the ORM,
# each cost more CPU than the sends whose outcomes it wrote (docs/PERFORMANCE.md).
def _still_held(outcomes):
    """The ids of these outcomes' rows that are still there, and of those that their claims
    still hold, all locked until the transaction ends (FOR UPDATE, where the database has it:
    a row locked cannot be deleted before its attempt is written)."""
    token = Notification._meta.get_field("claim_token")
    ids = [o.notification.pk for o in outcomes]
    tokens = {token.get_db_prep_value(o.notification.claim_token, connection) for o in outcomes}
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('id')}, {quote('status')}, {quote('claim_token')} FROM {quote(Notification._meta.db_table)} "
        f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(ids))})"
    )
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        rows = cursor.fetchall()
    held = {pk for pk, status, claim_token in rows if status == NotificationStatus.SENDING and claim_token in tokens}
    return {pk for pk, _, _ in rows}, held


PERSONAL_OUTCOME_FIELDS = ("rendered_subject", "rendered_text", "rendered_html", "last_error")


def _honour_erasures(outcomes):
    """A send in flight when its patient was erased writes its outcome without the message's copy
    or the error's text (either may quote the patient). Read after _still_held's lock, in a
    statement of its own, so it sees an erasure that committed while the lock was awaited; an
    erasure that comes later blanks what this write put."""
    personal = [o for o in outcomes if "rendered_text" in o.fields or o.fields.get("last_error")]
    if not personal:
        return
    erased = set(
        Notification.objects.filter(
            pk__in=[o.notification.pk for o in personal], patient__erased_at__isnull=False
        ).values_list("pk", flat=True)
    )
    for o in personal:
        if o.notification.pk in erased:
            o.fields.update({name: "" for name in PERSONAL_OUTCOME_FIELDS if name in o.fields})


def _update_each(columns, outcomes):
    """One UPDATE for every outcome that sets these columns: each row's values in a VALUES list,
    joined by primary key (an UPDATE a row cost the database a parse and a plan each; update()
    with a CASE per row and column spent more CPU building expressions than the sends). The
    rows are locked by the caller."""
    fields = [Notification._meta.get_field(name) for name in (*columns, "updated_at")]
    quote = connection.ops.quote_name
    table = quote(Notification._meta.db_table)
    # A VALUES list's columns are column1, column2… on PostgreSQL and SQLite alike. PostgreSQL
    # types a column of quoted literals (or NULLs) as text: its values are cast to the field's type.
    if connection.vendor == "postgresql":
        values = [
            f"CAST(v.column{n} AS {field.db_type(connection).split('(')[0]})" for n, field in enumerate(fields, 2)
        ]
    else:
        values = [f"v.column{n}" for n, _ in enumerate(fields, 2)]
    assignments = ", ".join(f"{quote(field.column)} = {value}" for field, value in zip(fields, values, strict=True))
    rows = []
    for o in outcomes:
        values = {**o.fields, "updated_at": o.now}
        rows.append(
            [o.notification.pk, *(field.get_db_prep_save(storable(values[field.name]), connection) for field in fields)]
        )
    placeholders = f"({', '.join(['%s'] * (len(fields) + 1))})"
    with connection.cursor() as cursor:
        for chunk in statements(rows, len(fields) + 1):
            cursor.execute(
                f"UPDATE {table} SET {assignments}, {quote('claim_token')} = NULL "
                f"FROM (VALUES {', '.join([placeholders] * len(chunk))}) AS v WHERE {table}.{quote('id')} = v.column1",
                [value for row in chunk for value in row],
            )


def _insert_attempts(outcomes):
    """The history rows of these attempts."""
    if not outcomes:
        return
    fields = [NotificationAttempt._meta.get_field(name) for name in _ATTEMPT_FIELDS]
    rows = [
        (
            o.notification.pk,
            o.notification.attempts,
            o.notification.claimed_at,
            o.now,
            o.fields["status"],
            o.fields["last_error"],
            o.fields["error_code"],
            o.fields.get("provider_message_id", ""),
        )
        for o in outcomes
    ]
    insert(NotificationAttempt, fields, rows)


_ATTEMPT_FIELDS = (
    "notification",
    "number",
    "started_at",
    "finished_at",
    "outcome",
    "error",
    "error_code",
    "provider_message_id",
)


class NotificationAttempt(models.Model):
    """One row per send attempt: the history the admin shows."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=NotificationStatus.choices)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["notification", "number"]
        # /metrics and the dashboard's chart read the last day's attempts, not the months kept.
        indexes = [models.Index(fields=["finished_at"], name="attempt_finished")]

    def __str__(self):
        return f"attempt {self.number}: {self.outcome}"
