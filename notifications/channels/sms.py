from django.conf import settings

from .base import Channel
from .text import send_text


class SmsChannel(Channel):
    name = "sms"

    def send(self, notification, message, connection=None):
        return send_text(notification, settings.TWILIO_PHONE_NUMBER, message.text)
