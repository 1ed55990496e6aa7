from django.conf import settings

from .base import Channel
from .text import text_backend


class WhatsAppChannel(Channel):
    """WhatsApp through Twilio: the same Messages API with whatsapp: addresses."""

    name = "whatsapp"

    def send(self, notification, message):
        sender = settings.TWILIO_WHATSAPP_NUMBER
        if sender and not sender.startswith("whatsapp:"):
            sender = f"whatsapp:{sender}"
        return text_backend().send(to=notification.recipient, from_=sender, body=message.text)
