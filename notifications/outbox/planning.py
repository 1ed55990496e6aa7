"""Which rows an appointment event creates. Runs inside the event's transaction (the rows are
an outbox); the rows due now are handed to the broker once that transaction commits."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from appointments.models import Appointment, AppointmentStatus
from notifications.channels import TEXT_CHANNELS, address_for
from notifications.messages.snapshot import snapshot
from notifications.outbox.dispatch import enqueue_on_commit
from notifications.outbox.models import Channel, Notification, NotificationKind, NotificationStatus
from notifications.outbox.quiet_hours import adjust_reminders
from notifications.outbox.raw_sql import insert_ignoring_conflicts
from notifications.outbox.undeliverable import is_undeliverable


def reminder_times(starts_at, schedule=None):
    """(time, channel) for each reminder of an appointment starting at starts_at."""
    for entry in schedule if schedule is not None else settings.NOTIFICATIONS_REMINDER_SCHEDULE:
        offset = timedelta(
            days=entry.get("days_before", 0),
            hours=entry.get("hours_before", 0),
            minutes=entry.get("minutes_before", 0),
        )
        for channel in entry["channels"]:
            yield starts_at - offset, channel


def _row(appointment, kind, channel, scheduled_for, context, skip_reason=""):
    patient = appointment.patient
    recipient = address_for(patient, channel)
    if not skip_reason:
        if channel in patient.opted_out:
            skip_reason = f"patient opted out of {channel}"
        elif not recipient:
            skip_reason = f"patient has no address for {channel}"
            if _reachable_by_email(patient, channel):
                skip_reason += BY_EMAIL_INSTEAD
        elif channel == Channel.EMAIL and is_undeliverable(patient.pk, recipient):
            skip_reason = "email address reported undeliverable"
    return Notification.planned(
        appointment=appointment,
        patient=patient,
        kind=kind,
        channel=channel,
        scheduled_for=scheduled_for,
        recipient=recipient,
        context=context,
        skip_reason=skip_reason,
    )


# Said of a text message that cannot be addressed, and what plans its email (_by_email_instead).
BY_EMAIL_INSTEAD = "; sent by email instead"


def _reachable_by_email(patient, channel):
    return (
        channel in TEXT_CHANNELS
        and bool(patient.email)
        and Channel.EMAIL not in patient.opted_out
        and not is_undeliverable(patient.pk, patient.email)
    )


def _by_email_instead(rows, appointment, context):
    """For each text message that cannot be addressed (no phone), the same message by email at
    the same time, so that nobody chose a channel and hears nothing. The planned-once key makes
    it once: an email the patient gets anyway, or one another text row already asked for, is
    the same row."""
    wanted = {(row.kind, row.scheduled_for) for row in rows if row.last_error.endswith(BY_EMAIL_INSTEAD)}
    planned = {(row.kind, row.scheduled_for) for row in rows if row.channel == Channel.EMAIL}
    return [_row(appointment, kind, Channel.EMAIL, at, context) for kind, at in sorted(wanted - planned)]


def _reminder_rows(appointment, now, context):
    patient = appointment.patient
    reminders = [(at, channel) for at, channel in reminder_times(appointment.starts_at) if channel in patient.channels]
    for at, channel in adjust_reminders(reminders, appointment.starts_at, patient.timezone):
        # A reminder whose time passed before it was planned is kept as a skipped row, so
        # staff can see why the patient did not get it.
        late = "reminder time had passed when the appointment was planned" if at <= now else ""
        yield _row(appointment, NotificationKind.REMINDER, channel, at, context, skip_reason=late)


def _plan(appointment, notice_kind, occurred_at, with_reminders, previous_starts_at=None, notice_at=None):
    context = snapshot(appointment, previous_starts_at)
    notice_at = notice_at or occurred_at
    rows = [_row(appointment, notice_kind, channel, notice_at, context) for channel in appointment.patient.channels]
    if with_reminders:
        rows.extend(_reminder_rows(appointment, occurred_at, context))
    rows.extend(_by_email_instead(rows, appointment, context))
    # The database's uniqueness key drops the rows a replayed event already planned.
    inserted = insert_ignoring_conflicts(rows, returning=("id", "kind", "status"))
    if notice_at > occurred_at:
        due_now = []  # the sweep sends the notice when its time comes
    elif len(inserted) == len(rows):
        due_now = [pk for pk, kind, status in inserted if kind == notice_kind and status == NotificationStatus.PENDING]
    else:
        # A replay: the notice it would send may be a row the first planning made.
        due_now = (
            Notification.objects.filter(
                appointment=appointment, kind=notice_kind, scheduled_for=notice_at, status=NotificationStatus.PENDING
            )
            .order_by()
            .values_list("id", flat=True)
        )
    enqueue_on_commit(list(due_now))


def plan_booking(appointment, occurred_at):
    _plan(appointment, NotificationKind.BOOKING_CONFIRMATION, occurred_at, with_reminders=True)


def plan_reschedule(appointment, occurred_at, previous_starts_at):
    # Moves in quick succession reach the patient as one notice naming the latest time: the notice
    # waits a settle window, and a move within it withdraws the one still waiting, keeping the
    # time the patient last heard as the one the appointment moved from.
    unsent = Notification.objects.filter(appointment=appointment, kind=NotificationKind.RESCHEDULE).still_to_go()
    heard = unsent.order_by("scheduled_for").values_list("context__previous_starts_at", flat=True).first()
    # Every row still to go names the old time (reminders, the booking confirmation, an earlier
    # notice, a fallback): only the notice of this move and its reminders go.
    Notification.objects.filter(appointment=appointment).withdraw()
    if heard:
        previous_starts_at = datetime.fromisoformat(heard)
    notice_at = occurred_at + timedelta(seconds=settings.NOTIFICATIONS_RESCHEDULE_SETTLE_SECONDS)
    _plan(appointment, NotificationKind.RESCHEDULE, occurred_at, True, previous_starts_at, notice_at)


def plan_cancellation(appointment, occurred_at):
    # Nothing still waiting makes sense once the appointment is off.
    Notification.objects.filter(appointment=appointment).withdraw()
    _plan(appointment, NotificationKind.CANCELLATION, occurred_at, with_reminders=False)


def fallback_channel(failed):
    """The channel a message that failed for good on `failed.channel` goes by instead, or None:
    a text message goes by email, an email (bounced, rejected, refused) by the first text
    channel the patient chose, else by SMS, when they have a phone; never to an address the patient opted out of
    or an email service reported undeliverable."""
    patient = failed.patient
    if failed.channel in TEXT_CHANNELS:
        candidates = [Channel.EMAIL]
    elif failed.channel == Channel.EMAIL:
        # The text channels the patient chose, else SMS to the phone they gave (a chosen one
        # already carries this message: the planned-once key then refuses the fallback).
        candidates = [channel for channel in TEXT_CHANNELS if channel in patient.channels] or [Channel.SMS]
    else:
        return None
    for channel in candidates:
        address = address_for(patient, channel)
        if not address or channel in patient.opted_out:
            continue
        if channel == Channel.EMAIL and is_undeliverable(patient.pk, address):
            continue
        return channel
    return None


def plan_fallback(failed):
    """A message that failed for good goes once by another channel (fallback_channel), as its
    own row: the planned-once key refuses a second message of the same kind and time on that
    channel (another row's fallback, or the patient's own row on it, included, even when two
    workers race), and fallback_for a second fallback of one row.
    The fallback describes the appointment as it is now (a late receipt can come after a move);
    for one cancelled or past since, it is kept skipped, with why."""
    patient = failed.patient
    channel = fallback_channel(failed)
    if channel is None:
        return None
    appointment = Appointment.objects.filter(pk=failed.appointment_id).first()
    if appointment is None:  # deleted in the admin meanwhile: nothing to tell
        return None
    appointment.patient = patient
    context = snapshot(appointment) | {"previous_starts_at": failed.context.get("previous_starts_at", "")}
    skip_reason = ""
    if appointment.status == AppointmentStatus.CANCELLED and failed.kind != NotificationKind.CANCELLATION:
        skip_reason = "appointment cancelled"
    elif appointment.starts_at <= timezone.now():
        skip_reason = "appointment already past"
    try:
        with transaction.atomic():
            fallback = Notification.planned(
                skip_reason=skip_reason,
                fallback_for=failed,
                appointment_id=failed.appointment_id,
                patient=patient,
                kind=failed.kind,
                channel=channel,
                scheduled_for=failed.scheduled_for,
                recipient=address_for(patient, channel),
                context=context,
            )
            fallback.save(force_insert=True)
    except IntegrityError:
        return None
    if fallback.status == NotificationStatus.PENDING:
        enqueue_on_commit([fallback.pk])
    return fallback
