"""A patient's story: every message as they saw it, every attempt, receipt, reply, confirmation,
opt-out and contact change, in time order and in plain words; and the search that finds them."""

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.urls import reverse

from appointments.models import Appointment, AppointmentStatus, ContactChange, Patient
from notifications.channels import TEXT_CHANNELS
from notifications.channels.twilio_errors import short_meaning
from notifications.inbound.models import InboundAction, InboundMessage
from notifications.operations.console import channel_label
from notifications.operations.masking import mask_email, mask_recipient
from notifications.outbox.models import DeliveryStatus, Notification, NotificationStatus

REPLY_WORDS = {
    InboundAction.CONFIRMED: "confirmed the appointment",
    InboundAction.NOTHING_TO_CONFIRM: "asked to confirm, with nothing to confirm",
    InboundAction.OPTED_OUT: "opted out of text messages",
    InboundAction.OPTED_IN: "opted back in to text messages",
    InboundAction.HELP: "asked for help",
    InboundAction.KEPT_FOR_STAFF: "wrote to the clinic (kept for staff)",
    InboundAction.UNKNOWN_SENDER: "came from a number we do not know",
}
RECEIPT_WORDS = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.READ: "read",
    DeliveryStatus.UNDELIVERED: "not delivered",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.SENT: "handed to the carrier",
}


@dataclass
class Event:
    at: datetime
    kind: str  # message, attempt, receipt, reply, appointment, confirmation, contact, staff
    words: str
    notification: Notification | None = None
    url: str = ""
    extra: dict = field(default_factory=dict)


def search_patients(query, limit=50):
    """Patients whose name or email holds the query, or whose phone holds its digits."""
    query = (query or "").strip()
    if not query:
        return Patient.objects.none()
    condition = Q(name__icontains=query) | Q(email__icontains=query)
    digits = re.sub(r"\D", "", query)
    if len(digits) >= 3:
        condition |= Q(phone__contains=digits)
    return Patient.objects.filter(condition).order_by("name", "pk")[:limit]


def masked(patient):
    """The patient as a list shows them."""
    return {"email": mask_email(patient.email), "phone": mask_recipient(patient.phone) if patient.phone else ""}


def _row_words(row):
    label, kind = channel_label(row.channel), row.get_kind_display().lower().replace("_", " ")
    to = mask_recipient(row.recipient) if row.channel != "in_app" else "the patient's inbox"
    head = f"{kind.capitalize()} by {label} to {to}"
    if row.fallback_for_id:
        head += f" (instead of the {channel_label(row.fallback_for.channel)} message that did not arrive)"
    match row.status:
        case NotificationStatus.SENT:
            return f"{head}: sent"
        case NotificationStatus.SKIPPED:
            return f"{head}: not sent, {row.last_error or 'skipped'}"
        case NotificationStatus.CANCELLED:
            return f"{head}: withdrawn before it went (the appointment moved or was cancelled)"
        case NotificationStatus.FAILED if row.is_dead:
            return f"{head}: gave up after {row.attempts} attempt(s)"
        case NotificationStatus.FAILED:
            return f"{head}: failed for now, trying again at {row.next_attempt_at:%Y-%m-%d %H:%M} UTC"
    return f"{head}: waiting to go out"


def _provider(row):
    return "Twilio" if row.channel in TEXT_CHANNELS else channel_label(row.channel)


def _error_words(row, code, error):
    if row.channel in TEXT_CHANNELS and code:
        return f"Twilio: {short_meaning(code)} ({code})"
    return f"{_provider(row)}: {error or code or 'failed'}"


def _final_failure_words(row, code, error):
    """A failure that ended the row's own attempts, with what was done instead."""
    words = _error_words(row, code, error)
    fallback = getattr(row, "fallback", None)  # the reverse one-to-one raises when there is none
    if fallback is not None:
        words += f"; sent by {channel_label(fallback.channel)} instead"
    return words


def _notification_events(row):
    url = reverse("admin:notifications_notification_change", args=[row.pk])
    yield Event(row.sent_at or row.scheduled_for, "message", _row_words(row), row, url)
    attempts = list(row.attempt_log.all())
    for attempt in attempts:
        if attempt.outcome == NotificationStatus.SENT:
            words = f"Attempt {attempt.number}: {_provider(row)} accepted it"
        elif attempt.outcome == NotificationStatus.FAILED:
            final = attempt is attempts[-1] and row.is_dead
            describe = _final_failure_words if final else _error_words
            words = f"Attempt {attempt.number}: {describe(row, attempt.error_code, attempt.error)}"
        else:
            words = f"Attempt {attempt.number}: {attempt.outcome}" + (f", {attempt.error}" if attempt.error else "")
        yield Event(attempt.finished_at, "attempt", words, row, url)
    for receipt in row.receipts.all():
        if receipt.status in (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED):
            words = "Receipt: " + _final_failure_words(row, receipt.error_code, receipt.status)
        else:
            words = f"Receipt: {RECEIPT_WORDS.get(receipt.status, receipt.status)}"
        yield Event(receipt.received_at, "receipt", words, row, url)


def _appointment_events(appointment):
    url = reverse("admin:appointments_appointment_change", args=[appointment.pk])
    when = f"{appointment.starts_at:%Y-%m-%d %H:%M} UTC"
    yield Event(appointment.created_at, "appointment", f"Booked with {appointment.provider} for {when}", url=url)
    if appointment.confirmed_at:
        yield Event(appointment.confirmed_at, "confirmation", f"Confirmed the appointment of {when}", url=url)
    if appointment.status == AppointmentStatus.CANCELLED:
        reason = f": {appointment.cancel_reason}" if appointment.cancel_reason else ""
        yield Event(appointment.updated_at, "appointment", f"Appointment of {when} cancelled{reason}", url=url)


def _inbound_events(patient):
    for message in InboundMessage.objects.filter(patient=patient):
        words = f"Replied by {channel_label(message.channel)}: “{message.body}”, {REPLY_WORDS.get(message.action, message.action)}"
        url = reverse("admin:notifications_inboundmessage_change", args=[message.pk])
        yield Event(message.received_at, "reply", words, url=url)


def _contact_events(patient):
    for change in ContactChange.objects.filter(patient=patient):
        value = mask_recipient(change.value)
        words = f"Asked to change their {change.field} to {value}; waiting for the code sent there"
        yield Event(change.created_at, "contact", words)
    # Staff edits in the admin (channels, opt-outs, addresses): the admin's own log of them.
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Patient), object_id=str(patient.pk)
    ).select_related("user")
    for entry in entries:
        change = entry.get_change_message() or entry.get_action_flag_display()
        yield Event(entry.action_time, "staff", f"Staff ({entry.user}): {change}")


def patient_story(patient):
    """The patient's events, oldest first."""
    rows = (
        Notification.objects.filter(patient=patient)
        .select_related("fallback_for", "fallback")
        .prefetch_related("attempt_log", "receipts")
    )
    events = []
    for row in rows:
        events.extend(_notification_events(row))
    for appointment in Appointment.objects.filter(patient=patient):
        events.extend(_appointment_events(appointment))
    events.extend(_inbound_events(patient))
    events.extend(_contact_events(patient))
    # At the same instant, causes before effects: a reply before the confirmation it made.
    order = {
        "appointment": 0,
        "contact": 1,
        "staff": 1,
        "message": 2,
        "attempt": 3,
        "receipt": 4,
        "reply": 5,
        "confirmation": 6,
    }
    return sorted(events, key=lambda e: (e.at, order[e.kind]))
