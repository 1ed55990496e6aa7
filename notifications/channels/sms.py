from django.conf import settings

from .text import TwilioChannel, send_text


class SmsChannel(TwilioChannel):
    name = "sms"

    def send(self, notification, message, connection=None):
        return send_text(notification, settings.TWILIO_PHONE_NUMBER, message.text)
