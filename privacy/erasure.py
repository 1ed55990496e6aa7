"""A patient's personal data erased, in every table, in one transaction (a process dying midway
leaves nothing half done): pending rows withdrawn; name and contact details, the messages' copies
and contexts, inbound bodies and numbers, contact changes and codes, idempotency records and the
admin's log entries that carry them replaced or removed; the sign-in account disabled. What the
statistics count stays: every row keeps its status, channel, kind and times. A tombstone
(privacy.Erasure) keeps the id, when, who and why; erasing again changes nothing."""

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from knox.models import AuthToken

from appointments.models import (
    Appointment,
    ContactChange,
    ContactChannel,
    ContactCodeSent,
    IdempotentRequest,
    Patient,
)
from notifications.models import InboundMessage, Notification, NotificationAttempt, UndeliverableAddress

from .models import Erasure

ERASED_NAME = "(erased)"


@transaction.atomic
def erase(patient_id, by, reason, now=None):
    """Erase the patient's personal data; returns (the tombstone, whether this call erased)."""
    now = now or timezone.now()
    # Locked first: two erasures of one patient (or a staff edit) go one after the other.
    patient = Patient.objects.select_for_update().get(pk=patient_id)
    done = Erasure.objects.filter(patient_id=patient_id).first()
    if done is not None:
        return done, False
    old = {value for value in (patient.name, patient.email, patient.phone) if value}
    _erase_messages(patient, now)
    _erase_records(patient, old)
    _disable_sign_in(patient)
    # An address that can never be delivered (RFC 2606's .invalid) keeps the record a valid patient
    # (the API's schema says email); opted out of every channel, nothing is planned for it again.
    Patient.objects.filter(pk=patient_id).update(
        name=ERASED_NAME,
        email=f"erased-{patient_id}@erased.invalid",
        phone="",
        opted_out=list(ContactChannel.values),
        erased_at=now,
    )
    return Erasure.objects.create(patient_id=patient_id, at=now, by=by, reason=reason), True


def _erase_messages(patient, now):
    rows = Notification.objects.filter(patient=patient)
    # Named transition: what was still to go out will not.
    rows.withdraw()
    # Status, channel, kind and times stay: the statistics count them. An error's text may quote
    # the address, so it goes too (its code stays).
    rows.update(
        recipient="", context={}, rendered_subject="", rendered_text="", rendered_html="", last_error="", updated_at=now
    )
    NotificationAttempt.objects.filter(notification__patient=patient).update(error="")
    Appointment.objects.filter(patient=patient).update(reason="", cancel_reason="")
    # Messages from the patient's number, also those kept before it was known to be theirs.
    sent_by_them = Q(patient=patient)
    if patient.phone:
        sent_by_them |= Q(from_number__in=[patient.phone, f"whatsapp:{patient.phone}"])
    InboundMessage.objects.filter(sent_by_them).update(body="", from_number="")


def _erase_records(patient, old):
    ContactChange.objects.filter(patient=patient).delete()
    ContactCodeSent.objects.filter(patient=patient).update(destination="")
    # An address an email service reported undeliverable names the patient's old address.
    UndeliverableAddress.objects.filter(patient=patient).delete()
    # The answers kept for replay quote the patient (a registration's answer holds its contact
    # details, a booking's its appointment).
    kept = Q(path__startswith=f"/api/patients/{patient.pk}/") | Q(response_body__patient=patient.pk)
    kept |= Q(path="/api/patients/", response_body__id=patient.pk)
    if patient.user_id:
        kept |= Q(user_id=patient.user_id)
    IdempotentRequest.objects.filter(kept).delete()
    _erase_admin_log(patient, old)


def _erase_admin_log(patient, old):
    """The admin's history names objects by their str() (a patient's name, an appointment's
    "<name> with …", a row's recipient) and its messages may quote what changed."""
    about = Q(content_type=ContentType.objects.get_for_model(Patient), object_id=str(patient.pk))
    related = {
        Appointment: Appointment.objects.filter(patient=patient).values_list("pk", flat=True),
        Notification: Notification.objects.filter(patient=patient).values_list("pk", flat=True),
        InboundMessage: InboundMessage.objects.filter(patient=patient).values_list("pk", flat=True),
    }
    for model, pks in related.items():
        about |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in=[str(pk) for pk in pks])
    for value in old:
        about |= Q(object_repr__contains=value) | Q(change_message__contains=value)
    if patient.user_id:
        about |= Q(content_type__app_label="auth", content_type__model="user", object_id=str(patient.user_id))
    LogEntry.objects.filter(about).update(object_repr=ERASED_NAME, change_message="")


def _disable_sign_in(patient):
    user = patient.user
    if user is None:
        return
    AuthToken.objects.filter(user=user).delete()
    user.set_unusable_password()
    user.is_active = False
    user.username = f"erased-{user.pk}"
    user.email = user.first_name = user.last_name = ""
    user.save(update_fields=["password", "is_active", "username", "email", "first_name", "last_name"])
