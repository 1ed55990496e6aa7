from django.conf import settings

from .base import Channel
from .text import text_backend


class SmsChannel(Channel):
    name = "sms"

    def send(self, notification, message):
        return text_backend().send(to=notification.recipient, from_=settings.TWILIO_PHONE_NUMBER, body=message.text)
