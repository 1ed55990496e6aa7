"""The link a patient acts on, /a/{token}/: a short signed token naming one appointment.

The token is the appointment's id signed with SECRET_KEY under its own salt, so no other
signed value of the service passes for one and a changed id breaks the signature. It is valid
until the appointment starts, as it is now: the page reads the appointment's current time, so an
old link after a reschedule shows, and expires at, the new time."""

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from .models import Appointment

SALT = "appointments.links.v1"


def token_for(appointment_id):
    """The token of an appointment's link (base-36 id, then the signature: about 50 characters)."""
    return signing.Signer(salt=SALT).sign(_base36(int(appointment_id)))


def link_for(appointment_id):
    """The absolute URL of the appointment's page (SITE_URL: emails are read elsewhere)."""
    return settings.SITE_URL + reverse("appointment-link", args=[token_for(appointment_id)])


def appointment_for(token, now=None):
    """The appointment a token names, or None when it is tampered with, names no appointment,
    or its appointment has started (a link serves nothing after that)."""
    try:
        appointment_id = int(signing.Signer(salt=SALT).unsign(token), 36)
    except (signing.BadSignature, ValueError):
        return None
    appointment = Appointment.objects.select_related("patient").filter(pk=appointment_id).first()
    if appointment is None or appointment.starts_at <= (now or timezone.now()):
        return None
    return appointment


def _base36(number):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text
