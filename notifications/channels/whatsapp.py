from django.conf import settings

from .base import DeliveryError
from .text import Content, TwilioChannel, send_text

# Our own code for a free-form WhatsApp message we did not send: Twilio would accept it and
# fail it later with 63016.
SESSION_CLOSED = "session_closed"

# Twilio tells WhatsApp addresses from phone numbers by this prefix, on both ends.
PREFIX = "whatsapp:"


class WhatsAppChannel(TwilioChannel):
    """WhatsApp through Twilio: the same Messages API with whatsapp: addresses. A message the
    clinic starts goes by its kind's approved Content Template; free-form text goes only inside
    the 24 hours after the patient's last WhatsApp message to us."""

    name = "whatsapp"
    label = "WhatsApp"
    provider = "twilio"

    def address_for(self, patient):
        return f"{PREFIX}{patient.phone}" if patient.phone else ""

    def send(self, notification, message, connection=None):
        sender = settings.TWILIO_WHATSAPP_NUMBER
        if sender and not sender.startswith(PREFIX):
            sender = f"{PREFIX}{sender}"
        content_sid = settings.TWILIO_CONTENT_SIDS.get(notification.kind)
        if content_sid:
            return send_text(notification, sender, "", content=Content(content_sid, message.variables))
        if not notification.patient.whatsapp_session_open():
            raise DeliveryError(
                f"not sent: no approved WhatsApp template for {notification.kind} (TWILIO_CONTENT_SIDS) and the "
                "patient has not written to us on WhatsApp in the last 24 hours",
                permanent=True,
                code=SESSION_CLOSED,
            )
        return send_text(notification, sender, message.text)
