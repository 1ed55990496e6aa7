from .base import Channel, DeliveryError, Message
from .email import EmailChannel
from .in_app import InAppChannel
from .session import SendSession
from .sms import SmsChannel
from .whatsapp import WhatsAppChannel

_CHANNELS = {channel.name: channel for channel in (EmailChannel(), SmsChannel(), WhatsAppChannel(), InAppChannel())}


def get_channel(name):
    return _CHANNELS[name]


__all__ = ["Channel", "DeliveryError", "Message", "SendSession", "get_channel"]
