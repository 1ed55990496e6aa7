"""Where SMS and WhatsApp text goes: Twilio (twilio_backend.py), the console, or a local
outbox for tests. SMS_BACKEND picks one."""

import functools
import itertools
import json
import logging
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils.module_loading import import_string

from config.phone_numbers import NOT_ALLOWED, refusal

from .base import Channel, DeliveryError

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
    def send(self, *, to, from_, body, look_first_since=None, content=None, status_callback="", taken=None):
        if content:
            body = f"(template {content.sid} with {json.dumps(content.variables)})"
        # Logged, not printed: the log's filter masks the number in every process, at INFO.
        message_id = f"console-{next(_local_ids)}"
        logger.info("text message %s to %s from %s:\n%s", message_id, to, from_ or "(default sender)", body)
        return message_id


class LocmemBackend:
    def send(self, *, to, from_, body, look_first_since=None, content=None, status_callback="", taken=None):
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
    """Send an SMS or WhatsApp row's text (or Content Template) through the configured backend.
    A row possibly sent looks for its own message first: from its own send's start, never its
    booking, and never one another row holds."""
    look_first = notification.possibly_sent and notification.send_started_at is not None
    return checked_backend(notification.recipient).send(
        to=notification.recipient,
        from_=from_,
        body=body,
        look_first_since=notification.send_started_at if look_first else None,
        content=content,
        status_callback=status_callback_url(notification),
        taken=functools.partial(_held_by_another_row, notification),
    )


def _held_by_another_row(notification, provider_message_id):
    """Whether another row already holds this provider message (it is that row's, not ours).
    Asked of the row's own model, which the channels do not import (the outbox imports them)."""
    rows = type(notification)._default_manager
    return rows.filter(provider_message_id=provider_message_id).exclude(pk=notification.pk).exists()


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
