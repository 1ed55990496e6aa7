"""Everything held about a patient, as one JSON document written a piece at a time: each list is
read in chunks (`.iterator(chunk_size=...)`, with its children prefetched per chunk), so a patient
with tens of thousands of rows is exported in bounded memory. FORMAT_VERSION names the shape."""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Prefetch
from django.utils import timezone

from appointments.models import Appointment, ContactChange, ContactCodeSent, PatientChange
from notifications.models import DeliveryReceipt, InboundAction, InboundMessage, Notification, NotificationAttempt

from .models import AccessLogEntry, Erasure

FORMAT_VERSION = 1
CHUNK_SIZE = 500

PATIENT_FIELDS = ("id", "name", "email", "phone", "timezone", "language", "channels", "opted_out", "created_at")
APPOINTMENT_FIELDS = (
    "id",
    "provider",
    "starts_at",
    "duration_minutes",
    "location",
    "reason",
    "status",
    "cancel_reason",
    "confirmed_at",
    "created_at",
    "updated_at",
)
NOTIFICATION_FIELDS = (
    "id",
    "appointment_id",
    "kind",
    "channel",
    "status",
    "scheduled_for",
    "recipient",
    "attempts",
    "sent_at",
    "delivery_status",
    "delivery_error_code",
    "read_at",
    "rendered_subject",
    "rendered_text",
    "rendered_html",
    "created_at",
)
ATTEMPT_FIELDS = ("number", "started_at", "finished_at", "outcome", "error_code", "provider_message_id")
RECEIPT_FIELDS = ("message_sid", "status", "error_code", "received_at")
INBOUND_FIELDS = ("id", "received_at", "channel", "from_number", "body", "action", "appointment_id")
ACCESS_FIELDS = ("at", "username", "action", "path", "remote_address")
CONSENT_ACTIONS = (InboundAction.OPTED_OUT, InboundAction.OPTED_IN)


def fields_of(instance, names):
    return {name: getattr(instance, name) for name in names}


def _dumps(value):
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _notification(row):
    data = fields_of(row, NOTIFICATION_FIELDS)
    data["attempt_log"] = [fields_of(a, ATTEMPT_FIELDS) for a in row.attempt_log.all()]
    data["receipts"] = [fields_of(r, RECEIPT_FIELDS) for r in row.receipts.all()]
    return data


def _array(rows, as_dict):
    yield "["
    for n, row in enumerate(rows):
        yield ("," if n else "") + _dumps(as_dict(row))
    yield "]"


def _key(name, first=False):
    return ("" if first else ",") + _dumps(name) + ":"


def sections(patient):
    """(name, rows, how each row is written) of every list the document holds."""
    pk = patient.pk
    chunked = {"chunk_size": CHUNK_SIZE}
    notifications = (
        Notification.objects.filter(patient_id=pk)
        .order_by("pk")
        .prefetch_related(
            Prefetch("attempt_log", NotificationAttempt.objects.order_by("number")),
            Prefetch("receipts", DeliveryReceipt.objects.order_by("received_at", "pk")),
        )
    )
    inbound = InboundMessage.objects.filter(patient_id=pk).order_by("received_at", "pk")
    appointments = Appointment.objects.filter(patient_id=pk).order_by("pk")
    return [
        ("contact_changes", ContactChange.objects.filter(patient_id=pk).order_by("pk"), _contact_change),
        ("verification_codes_sent", ContactCodeSent.objects.filter(patient_id=pk).order_by("pk"), _code_sent),
        ("appointments", appointments.iterator(**chunked), lambda a: fields_of(a, APPOINTMENT_FIELDS)),
        ("confirmations", appointments.filter(confirmed_at__isnull=False).iterator(**chunked), _confirmation),
        ("changes_made", PatientChange.objects.filter(patient_id=pk).order_by("pk").iterator(**chunked), _change),
        ("notifications", notifications.iterator(**chunked), _notification),
        ("inbound_messages", inbound.iterator(**chunked), lambda m: fields_of(m, INBOUND_FIELDS)),
        ("opt_outs", inbound.filter(action__in=CONSENT_ACTIONS).iterator(**chunked), _consent),
        ("access_log", AccessLogEntry.objects.filter(patient_id=pk).iterator(**chunked), _access),
    ]


def _contact_change(change):
    return {
        "field": change.field,
        "value": change.value,
        "created_at": change.created_at,
        "expires_at": change.expires_at,
    }


def _code_sent(code):
    return {"field": code.field, "destination": code.destination, "sent_at": code.sent_at}


def _confirmation(appointment):
    return {"appointment_id": appointment.pk, "confirmed_at": appointment.confirmed_at}


def _change(change):
    return {"appointment_id": change.appointment_id, "action": change.action, "at": change.at}


def _consent(message):
    return {"channel": message.channel, "action": message.action, "at": message.received_at}


def _access(entry):
    return fields_of(entry, ACCESS_FIELDS)


def buffered(pieces, size=64 * 1024):
    """The pieces joined into chunks of about `size` characters: one write per row costs more
    than the row."""
    buffer, length = [], 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer)


def document(patient):
    """The export of this patient, as pieces of JSON text to be written one after the other."""
    erasure = Erasure.objects.filter(patient_id=patient.pk).first()
    profile = fields_of(patient, PATIENT_FIELDS) | {
        "erased_at": erasure.at if erasure else None,
        "current_channels": [c for c in patient.channels if c not in patient.opted_out],
    }
    yield "{" + _key("format_version", first=True) + _dumps(FORMAT_VERSION)
    yield _key("exported_at") + _dumps(timezone.now())
    yield _key("patient") + _dumps(profile)
    for name, rows, as_dict in sections(patient):
        yield _key(name)
        yield from _array(rows, as_dict)
    yield "}"
