"""Verified contact changes: a patient's own new email or phone gets a six-digit code there, and
takes effect when the patient sends it back (POST /api/patients/{id}/verify/). A code lasts
CONTACT_CODE_TTL. Staff changes do not come here.

Every code costs the clinic a message from its own sender, so codes are limited: CODES_PER_HOUR
and CODES_PER_DAY per patient, and the same per destination whoever asks (one phone cannot be
flooded from many accounts); MAX_ATTEMPTS wrong guesses a day per patient and field, counted
across codes, so asking again brings no new guesses. Over any of them: 429 with Retry-After."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework import serializers
from rest_framework.exceptions import Throttled

from config.phone_numbers import refusal

from .models import ContactChange, ContactCodeSent, Patient
from .serializers import EMAIL_TAKEN, username_taken
from .signals import TextNotSent, text_message_requested

CONTACT_CODE_TTL = timedelta(minutes=15)
MAX_ATTEMPTS = 5
CODES_PER_HOUR = 3
CODES_PER_DAY = 10
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FIELDS = ("email", "phone")


def _digest(change_id, code):
    return salted_hmac("appointments.contact", f"{change_id}:{code}").hexdigest()


def request_changes(patient, changes, now=None):
    """Keep each change waiting for its code and send the code to the new address; a change that
    replaces a waiting one of the same field starts again. Call it inside the request's
    transaction: Throttled or a failed send undoes the whole change."""
    now = now or timezone.now()
    if not changes:
        return
    # The patient's row locked: two requests racing for the last code are counted one after the other.
    Patient.objects.select_for_update().filter(pk=patient.pk).exists()
    for field, value in changes.items():
        _check_allowances(patient, field, value, now)
    for field, value in changes.items():
        code = f"{secrets.randbelow(1_000_000):06d}"
        ContactChange.objects.filter(patient=patient, field=field).delete()
        change = ContactChange.objects.create(
            patient=patient, field=field, value=value, code_digest="", expires_at=now + CONTACT_CODE_TTL
        )
        change.code_digest = _digest(change.pk, code)
        change.save(update_fields=["code_digest"])
        ContactCodeSent.objects.create(patient=patient, field=field, destination=value.lower(), sent_at=now)
        try:
            _send_code(field, value, code)
        except (TextNotSent, OSError):
            message = "No code could be sent there; check it and try again."
            raise serializers.ValidationError({field: [message]}) from None


def _check_allowances(patient, field, value, now):
    sent = ContactCodeSent.objects.filter(sent_at__gt=now - DAY).order_by("-sent_at")
    for who, codes in (("you", sent.filter(patient=patient)), ("this address", sent.filter(destination=value.lower()))):
        for limit, window, per in ((CODES_PER_HOUR, HOUR, "an hour"), (CODES_PER_DAY, DAY, "a day")):
            times = list(codes.filter(sent_at__gt=now - window).values_list("sent_at", flat=True)[:limit])
            if len(times) >= limit:
                _refuse(times[-1] + window - now, f"At most {limit} codes {per} for {who}")
    guessed = sent.filter(patient=patient, field=field, wrong_guesses__gt=0)
    if (guessed.aggregate(n=Sum("wrong_guesses"))["n"] or 0) >= MAX_ATTEMPTS:
        first = guessed.order_by("sent_at").values_list("sent_at", flat=True).first()
        _refuse(first + DAY - now, f"{MAX_ATTEMPTS} wrong codes for this {field} in a day")


def _refuse(wait, why):
    wait = max(wait.total_seconds(), 1)
    raise Throttled(wait=wait, detail=f"{why}; try again in {int(wait) + 1} s.")


def _send_code(field, value, code):
    text = f"{settings.CLINIC_NAME}: your code is {code}. It confirms this {field} for your appointments."
    if field == "email":
        send_mail(f"{settings.CLINIC_NAME}: confirm your email", text, None, [value])
    elif not text_message_requested.send(sender=Patient, to=value, text=text):
        raise TextNotSent("nothing is connected to send text messages")


def _guesses_today(patient, field, now):
    codes = ContactCodeSent.objects.filter(patient=patient, field=field, sent_at__gt=now - DAY)
    return codes.aggregate(n=Sum("wrong_guesses"))["n"] or 0


@transaction.atomic
def confirm(patient, field, code, now=None):
    """Apply the waiting change when the code is right; raise ValidationError naming `code` otherwise."""
    now = now or timezone.now()
    change = ContactChange.objects.select_for_update().filter(patient=patient, field=field).first()
    if change is None or change.expires_at <= now:
        raise serializers.ValidationError({"code": ["No change of this field is waiting, or its code expired."]})
    if not constant_time_compare(change.code_digest, _digest(change.pk, code)):
        latest = ContactCodeSent.objects.filter(patient=patient, field=field).order_by("-sent_at").first()
        if latest is not None:
            latest.wrong_guesses += 1
            latest.save(update_fields=["wrong_guesses"])
        change.attempts += 1
        if change.attempts >= MAX_ATTEMPTS or _guesses_today(patient, field, now) >= MAX_ATTEMPTS:
            change.delete()  # committed with the answer: the change must be asked for again
        else:
            change.save(update_fields=["attempts"])
        return False
    if field == "phone" and refusal(change.value):  # the allowed countries changed since the code went
        raise serializers.ValidationError({"phone": [f"{refusal(change.value)}."]})
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
