"""Where SMS and WhatsApp text goes: Twilio (twilio_backend.py), the console, or a local
outbox for tests. SMS_BACKEND picks one."""

import functools
import itertools
import json
import logging
import sys
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils.module_loading import import_string

from .base import Channel, DeliveryError
from .destinations import NOT_ALLOWED, refusal

logger = logging.getLogger(__name__)

# The status callback URL's query parameter naming the row a receipt is for.
NOTIFICATION_PARAMETER = "notification"

# Twilio refuses a send to a number that texted STOP (or the like) to our sender with 21610.
UNSUBSCRIBED = "21610"


class TwilioChannel(Channel):
    """SMS and WhatsApp: both go through Twilio's Messages API."""

    def means_unsubscribed(self, error_code):
        return error_code == UNSUBSCRIBED


# Messages sent with SMS_BACKEND=locmem, like django.core.mail.outbox.
outbox = []
_local_ids = itertools.count(1)


@dataclass(frozen=True)
class Content:
    """An approved WhatsApp Content Template and its variables, sent instead of a body."""

    sid: str
    variables: dict


class ConsoleBackend:
    def send(self, *, to, from_, body, look_first_since=None, content=None, status_callback=""):
        if content:
            body = f"(template {content.sid} with {json.dumps(content.variables)})"
        sys.stdout.write(f"--- text message to {to} from {from_ or '(default sender)'} ---\n{body}\n---\n")
        sys.stdout.flush()
        return f"console-{next(_local_ids)}"


class LocmemBackend:
    def send(self, *, to, from_, body, look_first_since=None, content=None, status_callback=""):
        message_id = f"locmem-{next(_local_ids)}"
        outbox.append({"to": to, "from": from_, "body": body, "content": content, "sid": message_id})
        return message_id


# SMS_BACKEND's choices by dotted path, as Django names EMAIL_BACKEND's: a backend's module is
# imported on its first send, so a process that sends no text message (the management command
# sending email) does not spend its start-up importing the twilio client (docs/PERFORMANCE.md).
BACKENDS = {
    "twilio": "notifications.channels.twilio_backend.TwilioBackend",
    "console": "notifications.channels.text.ConsoleBackend",
    "locmem": "notifications.channels.text.LocmemBackend",
}


@functools.cache
def backend(name):
    """SMS_BACKEND's backend of that name, made once per process."""
    return import_string(BACKENDS[name])()


def checked_backend(to):
    """The configured backend, once `to` is known to be a number the clinic texts (the one check
    every text message passes, a row's or a verification code's); raises DeliveryError otherwise."""
    reason = refusal(to)
    if reason:
        raise DeliveryError(f"not sent: {reason}", permanent=True, code=NOT_ALLOWED)
    return backend(settings.SMS_BACKEND)


def send_text(notification, from_, body, content=None):
    """Send an SMS or WhatsApp row's text (or Content Template) through the configured backend."""
    return checked_backend(notification.recipient).send(
        to=notification.recipient,
        from_=from_,
        body=body,
        look_first_since=notification.created_at if notification.possibly_sent else None,
        content=content,
        status_callback=status_callback_url(notification),
    )


def send_one_off_sms(to, body):
    """An SMS outside the notification pipeline (a verification code for a new number), from the
    clinic's SMS sender through the configured backend; raises DeliveryError."""
    return checked_backend(to).send(to=to, from_=settings.TWILIO_PHONE_NUMBER, body=body)


def status_callback_url(notification):
    """The status webhook's URL with the row's id in its query, so that a receipt finds its row
    even when the send's answer (and with it the sid) was lost."""
    base = settings.TWILIO_STATUS_CALLBACK_URL
    if not base:
        return ""
    scheme, netloc, path, query, fragment = urlsplit(base)
    query = urlencode([*parse_qsl(query), (NOTIFICATION_PARAMETER, notification.pk)])
    return urlunsplit((scheme, netloc, path, query, fragment))
