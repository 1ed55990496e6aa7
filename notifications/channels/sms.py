from django.conf import settings

from .text import TwilioChannel, send_text


class SmsChannel(TwilioChannel):
    name = "sms"
    label = "SMS"
    provider = "twilio"

    def address_for(self, patient):
        return patient.phone

    def send(self, notification, message, connection=None):
        return send_text(notification, settings.TWILIO_PHONE_NUMBER, message.text)
