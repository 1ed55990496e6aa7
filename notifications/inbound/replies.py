"""What a patient's SMS or WhatsApp message to the clinic does, and what we answer (TwiML).

C or CONFIRM confirms the patient's next appointment; Twilio's opt-out words turn the channel
off and its opt-in words turn it on again; HELP and INFO get the help text; anything else is
kept for staff. Twilio itself answers the opt-out, opt-in and help words of an SMS on a long
code, so for SMS those are recorded without a second answer. Answers are templates under
templates/replies/, rendered in the patient's language."""

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from twilio.twiml.messaging_response import MessagingResponse

from appointments import services
from appointments.models import Patient
from appointments.signals import By
from config.phone_numbers import refusal
from notifications.inbound.models import InboundAction, InboundMessage
from notifications.messages.rendering import message_context
from notifications.messages.snapshot import snapshot
from notifications.outbox.consent import set_opted_out
from notifications.outbox.models import Channel

CONFIRM_WORDS = {"C", "CONFIRM"}
# Twilio's default keywords (Advanced Opt-Out), matched on the whole message.
OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
OPT_IN_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}
# The words Twilio answers itself for SMS.
ANSWERED_BY_TWILIO = {InboundAction.OPTED_OUT, InboundAction.OPTED_IN, InboundAction.HELP}


@dataclass(frozen=True)
class Inbound:
    sid: str
    sender: str  # +14155550100, or whatsapp:+14155550100
    to: str
    body: str


def handle_inbound(inbound, now=None):
    """Act on one inbound message once (Twilio may post it again) and return the TwiML answer."""
    now = now or timezone.now()
    channel = Channel.WHATSAPP if inbound.sender.startswith("whatsapp:") else Channel.SMS
    phone = inbound.sender.removeprefix("whatsapp:")
    with transaction.atomic():
        try:
            with transaction.atomic():
                message = InboundMessage.objects.create(
                    channel=channel,
                    from_number=inbound.sender,
                    to_number=inbound.to,
                    body=inbound.body,
                    message_sid=inbound.sid,
                    action=InboundAction.KEPT_FOR_STAFF,
                    received_at=now,
                )
        except IntegrityError:
            return MessagingResponse()  # the same message again: acted on already
        patients = list(Patient.objects.filter(phone=phone).order_by("pk"))
        if channel == Channel.WHATSAPP and patients:
            # WhatsApp's 24-hour window for free-form answers opens with this message.
            Patient.objects.filter(pk__in=[p.pk for p in patients]).update(whatsapp_last_inbound_at=now)
        action, appointment = _act(patients, channel, inbound, now)
        message.patient = appointment.patient if appointment else (patients[0] if patients else None)
        message.action, message.appointment = action, appointment
        message.save(update_fields=["patient", "action", "appointment"])
    answer = MessagingResponse()
    if refusal(inbound.sender):
        return answer  # the clinic's sender answers no number it would not text (SMS_ALLOWED_COUNTRIES)
    if not (channel == Channel.SMS and action in ANSWERED_BY_TWILIO):
        answer.message(_answer_text(action, message.patient, appointment))
    return answer


def _act(patients, channel, inbound, now):
    """What the message does: (action, the appointment it confirmed, if any)."""
    word = "".join(inbound.body.split()).upper()
    if not patients:
        return InboundAction.UNKNOWN_SENDER, None
    ids = [p.pk for p in patients]
    if word in CONFIRM_WORDS:
        appointment = services.next_upcoming(patients, now)
        if appointment is None:
            return InboundAction.NOTHING_TO_CONFIRM, None
        try:
            return InboundAction.CONFIRMED, services.confirm(appointment.pk, now, by=By.REPLY)
        except services.AppointmentConflict:  # cancelled a moment ago
            return InboundAction.NOTHING_TO_CONFIRM, None
    if word in OPT_OUT_WORDS:
        _set_consent(ids, channel, inbound.sender, True, now)
        return InboundAction.OPTED_OUT, None
    if word in OPT_IN_WORDS:
        _set_consent(ids, channel, inbound.sender, False, now)
        return InboundAction.OPTED_IN, None
    if word in HELP_WORDS:
        return InboundAction.HELP, None
    return InboundAction.KEPT_FOR_STAFF, None


def _set_consent(patient_ids, channel, sender, opted_out, received_at):
    """Apply a STOP or START unless one that reached us later was applied first (two requests
    racing for the patients' lock): Twilio's inbound webhook carries no time of its own, so the
    order is the order of arrival here. Checked under the patients' lock, which every consent
    change takes."""
    list(Patient.objects.select_for_update().filter(pk__in=patient_ids).order_by("pk"))
    newer = InboundMessage.objects.filter(
        channel=channel,
        from_number=sender,
        action__in=[InboundAction.OPTED_OUT, InboundAction.OPTED_IN],
        received_at__gt=received_at,
    )
    if not newer.exists():
        set_opted_out(patient_ids, channel, opted_out)


def _answer_text(action, patient, appointment):
    language = patient.language if patient else settings.LANGUAGE_CODE
    context = {"clinic_name": settings.CLINIC_NAME}
    if appointment is not None:
        context.update(message_context(snapshot(appointment), language))
    # Plain text, not HTML: the values go in unescaped (TwiML escapes them for XML).
    context = {key: mark_safe(value) if isinstance(value, str) else value for key, value in context.items()}
    with translation.override(language):
        return " ".join(render_to_string(f"replies/{action}.txt", context).split())
