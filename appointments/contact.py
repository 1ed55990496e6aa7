"""Verified contact changes: a patient's own new email or phone gets a six-digit code there, and
takes effect when the patient sends it back (POST /api/patients/{id}/verify/). A code lasts
CONTACT_CODE_TTL, and MAX_ATTEMPTS wrong ones end the change. Staff changes do not come here."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework import serializers

from notifications.channels.base import DeliveryError
from notifications.channels.text import send_one_off_sms

from .models import ContactChange, Patient
from .serializers import EMAIL_TAKEN, username_taken

CONTACT_CODE_TTL = timedelta(minutes=15)
MAX_ATTEMPTS = 5
FIELDS = ("email", "phone")


def _digest(change_id, code):
    return salted_hmac("appointments.contact", f"{change_id}:{code}").hexdigest()


def request_changes(patient, changes):
    """Keep each change waiting for its code and send the code to the new address; a change that
    replaces a waiting one of the same field starts again."""
    for field, value in changes.items():
        code = f"{secrets.randbelow(1_000_000):06d}"
        with transaction.atomic():
            ContactChange.objects.filter(patient=patient, field=field).delete()
            change = ContactChange.objects.create(
                patient=patient,
                field=field,
                value=value,
                code_digest="",
                expires_at=timezone.now() + CONTACT_CODE_TTL,
            )
            change.code_digest = _digest(change.pk, code)
            change.save(update_fields=["code_digest"])
        try:
            _send_code(field, value, code)
        except (DeliveryError, OSError):
            change.delete()
            message = "No code could be sent there; check it and try again."
            raise serializers.ValidationError({field: [message]}) from None


def _send_code(field, value, code):
    text = f"{settings.CLINIC_NAME}: your code is {code}. It confirms this {field} for your appointments."
    if field == "email":
        send_mail(f"{settings.CLINIC_NAME}: confirm your email", text, None, [value])
    else:
        send_one_off_sms(value, text)


@transaction.atomic
def confirm(patient, field, code):
    """Apply the waiting change when the code is right; raise ValidationError naming `code` otherwise."""
    change = ContactChange.objects.select_for_update().filter(patient=patient, field=field).first()
    if change is None or change.expires_at <= timezone.now():
        raise serializers.ValidationError({"code": ["No change of this field is waiting, or its code expired."]})
    if not constant_time_compare(change.code_digest, _digest(change.pk, code)):
        change.attempts += 1
        if change.attempts >= MAX_ATTEMPTS:
            change.delete()  # committed with the answer: the change must be asked for again
        else:
            change.save(update_fields=["attempts"])
        return False
    if field == "email" and patient.user_id and username_taken(change.value, besides=patient.user_id):
        raise serializers.ValidationError({"email": [EMAIL_TAKEN]})
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    setattr(patient, field, change.value)
    patient.save(update_fields=[field])
    if field == "email" and patient.user_id:
        patient.user.username = patient.user.email = change.value
        patient.user.save(update_fields=["username", "email"])
    change.delete()
    return True
