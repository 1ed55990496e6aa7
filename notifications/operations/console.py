"""The console's home: what needs a person today. Each finding carries the admin URL of the rows
behind it, so every line on the page opens what it counts."""

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone

from appointments.models import Appointment, AppointmentStatus, Patient
from appointments.reachability import unaddressable_channels
from notifications.channels import CHANNELS, TEXT_CHANNELS, address_for
from notifications.channels.twilio_errors import short_meaning
from notifications.operations.masking import mask_recipient
from notifications.operations.monitoring import oldest_due_age
from notifications.outbox.models import DeliveryStatus, Notification, NotificationStatus

# Twilio's answers that say the address itself is wrong, not that this one send failed: not a
# valid number, not a mobile number, the patient texted STOP to our number.
REFUSED_TWILIO_CODES = ("21211", "21614", "21610")
# SMTP refusals that are the operator's to fix (authentication), not the address's.
SMTP_NOT_A_BOUNCE = ("530", "535")
# A receipt that says the message never arrived.
NOT_DELIVERED = (DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED, DeliveryStatus.CANCELED)

NOTIFICATIONS_URL = "admin:notifications_notification_changelist"


def rows_url(**filters):
    """The notification list filtered to these rows."""
    return f"{reverse(NOTIFICATIONS_URL)}?{urlencode(filters)}"


def channel_label(name):
    """A channel as a sentence names it: email and in-app in lower case, SMS and WhatsApp as written."""
    label = CHANNELS[name].label if name in CHANNELS else name
    return label.lower() if label[1:] == label[1:].lower() else label


@dataclass
class Unreachable:
    """A patient who will not hear from us on a channel they chose, and why."""

    patient: Patient
    channel: str
    reason: str
    rows_url: str = ""

    @property
    def channel_words(self):
        return "every channel" if self.channel == "*" else channel_label(self.channel)

    @property
    def story_url(self):
        return reverse("console-patient", args=[self.patient.pk])

    @property
    def patient_url(self):
        return reverse("admin:appointments_patient_change", args=[self.patient.pk])


def _address_words(channel):
    return "email address" if channel == "email" else "phone number"


def refused_rows():
    """Rows whose provider refused the address or reported it undeliverable for good: Twilio's
    address codes, an email's permanent SMTP refusal (a hard bounce) or a failed email receipt."""
    twilio = Q(channel__in=TEXT_CHANNELS) & (
        Q(error_code__in=REFUSED_TWILIO_CODES) | Q(delivery_error_code__in=REFUSED_TWILIO_CODES)
    )
    bounced = Q(channel="email") & (
        (Q(status=NotificationStatus.FAILED, error_code__startswith="5") & ~Q(error_code__in=SMTP_NOT_A_BOUNCE))
        | Q(delivery_status__in=NOT_DELIVERED)
    )
    return Notification.objects.filter(twilio | bounced)


def _refusal_words(row):
    code = row.delivery_error_code or row.error_code
    if row.channel in TEXT_CHANNELS:
        return f"Twilio: {short_meaning(code)} ({code})"
    if row.delivery_status in NOT_DELIVERED:
        return f"email {row.delivery_status}" + (f" ({code})" if code else "")
    return f"email bounced: {row.last_error or code}"


def unreachable_patients(limit=100):
    """Patients who cannot be reached on a channel they chose: no address for it, an address the
    provider refused (while it is still the patient's address), or opted out of every channel."""
    found = {}

    def add(patient, channel, reason, url=""):
        found.setdefault((patient.pk, channel), Unreachable(patient, channel, reason, url))

    # Only patients missing an address or with an opt-out can be unreachable that way; the
    # check per channel is the channels' own (address_for), so it is made here in Python.
    for patient in Patient.objects.filter(Q(phone="") | Q(email="") | ~Q(opted_out=[])).order_by("name", "pk"):
        chosen = [c for c in patient.channels if c in CHANNELS]
        if chosen and set(chosen) <= set(patient.opted_out):
            add(patient, "*", "opted out of every channel they chose")
            continue
        for channel in unaddressable_channels(patient):
            add(patient, channel, f"chose {channel_label(channel)} but has no {_address_words(channel)}")

    refused = refused_rows().select_related("patient").order_by("-created_at", "-pk")
    for row in refused[: limit * 5]:
        patient = row.patient
        still_chosen = row.channel in patient.channels and row.channel not in patient.opted_out
        if still_chosen and row.recipient == address_for(patient, row.channel):
            same = refused.filter(patient=patient, channel=row.channel, recipient=row.recipient)
            ids = ",".join(str(pk) for pk in same.values_list("pk", flat=True))
            add(patient, row.channel, f"{mask_recipient(row.recipient)}: {_refusal_words(row)}", rows_url(id__in=ids))
    return sorted(found.values(), key=lambda u: (u.patient.name, u.patient.pk, u.channel))[:limit]


def delivered():
    """Rows that reached the patient as far as we know: sent, and no receipt saying otherwise."""
    return Notification.objects.filter(status=NotificationStatus.SENT).exclude(delivery_status__in=NOT_DELIVERED)


def unheard_appointments(now=None, hours=48):
    """Scheduled appointments in the next `hours` whose patient has had no message about them delivered."""
    now = now or timezone.now()
    heard = delivered().filter(appointment=OuterRef("pk"))
    return (
        Appointment.objects.filter(
            status=AppointmentStatus.SCHEDULED, starts_at__gte=now, starts_at__lt=now + timedelta(hours=hours)
        )
        .exclude(Exists(heard))
        .select_related("patient")
        .order_by("starts_at", "pk")
    )


def needs_attention(now=None, rows=10):
    """Everything the console's home lists under "needs attention", with the URLs behind each line."""
    now = now or timezone.now()
    due = Notification.objects.due(now)
    unheard = unheard_appointments(now)
    dead = Notification.objects.dead()
    oldest = oldest_due_age(now)
    return {
        "dead_count": dead.count(),
        "dead": list(dead.select_related("patient").order_by("-died_at", "-pk")[:rows]),
        "dead_url": rows_url(queue="dead"),
        "unreachable": unreachable_patients(),
        "unheard_count": unheard.count(),
        "unheard": [(a, rows_url(appointment=a.pk)) for a in unheard[:rows]],
        "due_count": due.count(),
        "due_oldest_seconds": oldest,
        "due_oldest_since": now - timedelta(seconds=oldest) if oldest is not None else None,
        "due": list(due.select_related("patient").order_by("scheduled_for", "pk")[:rows]),
        "due_url": rows_url(queue="due"),
    }
