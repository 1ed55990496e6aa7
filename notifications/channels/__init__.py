"""The channel registry: every channel there is, by name. The list of channel names, their
addressing and their providers live here and in the channel classes, nowhere else."""

from .base import Channel, DeliveryError, Message
from .email import EmailChannel
from .in_app import InAppChannel
from .session import SendSession
from .sms import SmsChannel
from .whatsapp import WhatsAppChannel

CHANNELS = {channel.name: channel for channel in (EmailChannel(), SmsChannel(), WhatsAppChannel(), InAppChannel())}
CHANNEL_NAMES = tuple(CHANNELS)
# The text channels Twilio carries: they have delivery receipts, and fall back to email.
TEXT_CHANNELS = tuple(name for name, channel in CHANNELS.items() if channel.provider == "twilio")


def get_channel(name):
    return CHANNELS[name]


def address_for(patient, channel):
    """The address a message to the patient on this channel goes to, or '' when they have none."""
    return CHANNELS[channel].address_for(patient)


__all__ = [
    "CHANNELS",
    "CHANNEL_NAMES",
    "Channel",
    "DeliveryError",
    "Message",
    "SendSession",
    "TEXT_CHANNELS",
    "address_for",
    "get_channel",
]
