from django.conf import settings

from .base import Channel
from .text import send_text


class WhatsAppChannel(Channel):
    """WhatsApp through Twilio: the same Messages API with whatsapp: addresses."""

    name = "whatsapp"

    def send(self, notification, message):
        sender = settings.TWILIO_WHATSAPP_NUMBER
        if sender and not sender.startswith("whatsapp:"):
            sender = f"whatsapp:{sender}"
        return send_text(notification, sender, message.text)
