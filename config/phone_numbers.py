"""Which numbers the clinic's sender may text: those whose country calling code is in
SMS_ALLOWED_COUNTRIES (by default the calling code of TWILIO_PHONE_NUMBER, any country when no
sender is set). Premium-rate and far-away numbers cost the clinic money per message (SMS
pumping), so the API refuses them at entry and every text message is checked here before it
leaves."""

import phonenumbers
from django.conf import settings

# A row refused here: never retried, and it falls back to email like any text that cannot go.
NOT_ALLOWED = "country_not_allowed"

# Twilio's WhatsApp addresses carry this prefix before the number.
WHATSAPP_PREFIX = "whatsapp:"


def calling_code(number):
    """The country calling code of an E.164 number ('+447700900123' -> '44'), or '' when the
    number does not parse."""
    number = number.removeprefix(WHATSAPP_PREFIX)
    try:
        return str(phonenumbers.parse(number, None).country_code)
    except phonenumbers.NumberParseException:
        return ""


def allowed_calling_codes():
    """The calling codes text may go to, or None for any."""
    if settings.SMS_ALLOWED_COUNTRIES:
        return set(settings.SMS_ALLOWED_COUNTRIES)
    sender = calling_code(settings.TWILIO_PHONE_NUMBER or "")
    return {sender} if sender else None


def refusal(number):
    """Why a text message must not go to this number, or '' when it may."""
    allowed = allowed_calling_codes()
    if allowed is None:
        return ""
    code = calling_code(number)
    if code in allowed:
        return ""
    named = f"+{code}" if code else "an unknown country code"
    listed = ", ".join(f"+{c}" for c in sorted(allowed))
    return f"{named} is not among the countries the clinic texts ({listed}; SMS_ALLOWED_COUNTRIES)"
