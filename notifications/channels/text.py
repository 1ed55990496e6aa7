"""Where SMS and WhatsApp text goes: Twilio, the console, or a local outbox for tests.
SMS_BACKEND picks one. Twilio's errors are translated to DeliveryError here and nowhere else."""

import contextlib
import functools
import itertools
import json
import logging
import sys
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import urllib3
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from .base import UNANSWERED, Channel, DeliveryError
from .twilio_http import PooledHttpClient

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


# How far Twilio's clock may be behind ours: a message it accepted is looked for from this long
# before the row was planned (date_created is Twilio's clock, created_at ours).
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class Content:
    """An approved WhatsApp Content Template and its variables, sent instead of a body."""

    sid: str
    variables: dict


class TwilioBackend:
    def send(self, *, to, from_, body, look_first_since=None, content=None, status_callback=""):
        """Send a message (its body, or a Content Template) and return its sid. With
        look_first_since (an earlier attempt may have reached Twilio), a message with this body
        that Twilio accepted since then counts as sent."""
        if not from_:
            raise DeliveryError("no Twilio sender number is configured", permanent=True, code="config")
        client = twilio_client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_API_BASE_URL,
            settings.TWILIO_HTTP_TIMEOUT,
        )
        options = {"to": to, "from_": from_}
        if content:
            options.update(content_sid=content.sid, content_variables=json.dumps(content.variables))
        else:
            options["body"] = body
        if status_callback:
            options["status_callback"] = status_callback
        with _translated_errors():
            if look_first_since is not None:
                look_first_since = look_first_since.replace(microsecond=0) - CLOCK_SKEW  # Twilio's are whole seconds
                for message in client.messages.list(to=to, from_=from_, limit=20):
                    if message.body == body and message.date_created and message.date_created >= look_first_since:
                        return message.sid
            return client.messages.create(**options).sid


@contextlib.contextmanager
def _translated_errors():
    """Twilio's and the network's errors as DeliveryError, transient or permanent."""
    try:
        yield
    except TwilioRestException as exc:
        raise _rest_error(exc) from exc
    except urllib3.exceptions.ConnectTimeoutError as exc:
        # No connection was made (refused, unresolvable, timed out connecting; NewConnectionError
        # is one of these): the request never reached Twilio.
        raise DeliveryError(f"Twilio unreachable: {exc.__class__.__name__}", permanent=False) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise DeliveryError(
            "Twilio did not answer in time", permanent=False, code=UNANSWERED, possibly_sent=True
        ) from exc
    except (TwilioException, urllib3.exceptions.HTTPError, OSError) as exc:
        # A connection dropped or reset after the request was written, a protocol error, an
        # answer that would not parse: Twilio may have taken the message.
        raise DeliveryError(
            f"Twilio's answer was lost: {exc.__class__.__name__}", permanent=False, possibly_sent=True
        ) from exc


def _rest_error(exc):
    """By HTTP status first (429 and 5xx come back later, other 4xx never will), then by code.
    Refused credentials (401, 20003) are the operator's to fix, not the patient's: retried."""
    transient = exc.status in (401, 429) or exc.status >= 500 or exc.code in (20003, 20429)
    message = f"Twilio {exc.status}" + (f" error {exc.code}" if exc.code else "") + f": {exc.msg}"
    return DeliveryError(message, permanent=not transient, code=exc.code or exc.status)


@functools.lru_cache(maxsize=4)
def twilio_client(account_sid, auth_token, base_url, timeout):
    """One client per process and configuration, so its HTTP connections are reused."""
    client = Client(account_sid, auth_token, http_client=PooledHttpClient(timeout=timeout))
    if base_url:
        client.api.base_url = base_url.rstrip("/")
    return client


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


_BACKENDS = {"twilio": TwilioBackend(), "console": ConsoleBackend(), "locmem": LocmemBackend()}


def send_text(notification, from_, body, content=None):
    """Send an SMS or WhatsApp row's text (or Content Template) through the configured backend."""
    return _BACKENDS[settings.SMS_BACKEND].send(
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
    return _BACKENDS[settings.SMS_BACKEND].send(to=to, from_=settings.TWILIO_PHONE_NUMBER, body=body)


def status_callback_url(notification):
    """The status webhook's URL with the row's id in its query, so that a receipt finds its row
    even when the send's answer (and with it the sid) was lost."""
    base = settings.TWILIO_STATUS_CALLBACK_URL
    if not base:
        return ""
    scheme, netloc, path, query, fragment = urlsplit(base)
    query = urlencode([*parse_qsl(query), (NOTIFICATION_PARAMETER, notification.pk)])
    return urlunsplit((scheme, netloc, path, query, fragment))
