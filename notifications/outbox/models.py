"""The notification row and its state machine.

Every status change is one of the named transitions below, written as a conditional UPDATE so
that two workers, the beat sweep and the management command can race on a row and exactly one
of them wins. A claim stamps the row with a fresh token; the outcome of a send is recorded only
while the row still carries that token, so a worker whose lease expired cannot overwrite the
outcome of the worker that took the row over.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from notifications.channels.choices import Channel
from notifications.messages.kinds import NotificationKind
from notifications.outbox.backoff import retry_delay
from notifications.outbox.outcomes import Outcome, record_outcomes  # noqa: F401
from notifications.outbox.queryset import Claimed, NotificationQuerySet  # noqa: F401  (Claimed: part of a claim's answer)
from notifications.outbox.starts import record_send_starts  # noqa: F401
from notifications.outbox.states import DEAD, DELIVERY_RANK, RETRYING, DeliveryStatus, NotificationStatus  # noqa: F401


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
            # A text send's start asks whether its recipient has another send in doubt (starts.py):
            # the few rows that can be, by recipient.
            models.Index(
                fields=["recipient", "channel"],
                condition=Q(status="sending") | Q(possibly_sent=True),
                name="notification_in_doubt",
            ),
        ]

    def __str__(self):
        # No recipient: lists and logs show a row's name, and a phone or email is personal data.
        return f"{self.kind} by {self.channel}, #{self.pk} ({self.status})"

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
            delay = retry_delay(self.attempts)
            if possibly_sent:
                # Its message may still be on its way into Twilio's list: the look-up waits for it.
                delay = max(delay, timedelta(seconds=settings.NOTIFICATIONS_UNANSWERED_GRACE))
            fields["next_attempt_at"] = now + delay if retry else None
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
