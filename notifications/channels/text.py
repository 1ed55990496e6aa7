"""Where SMS and WhatsApp text goes: Twilio, the console, or a local outbox for tests.
SMS_BACKEND picks one. Twilio's errors are translated to DeliveryError here and nowhere else."""
import functools
import itertools
import logging
import sys

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from .base import DeliveryError

logger = logging.getLogger(__name__)

# Messages sent with SMS_BACKEND=locmem, like django.core.mail.outbox.
outbox = []
_local_ids = itertools.count(1)


class TwilioBackend:
    def send(self, *, to, from_, body):
        if not from_:
            raise DeliveryError("no Twilio sender number is configured", permanent=True, code="config")
        options = {"to": to, "from_": from_, "body": body}
        if settings.TWILIO_STATUS_CALLBACK_URL:
            options["status_callback"] = settings.TWILIO_STATUS_CALLBACK_URL
        client = twilio_client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            settings.TWILIO_API_BASE_URL,
            settings.TWILIO_HTTP_TIMEOUT,
        )
        try:
            return client.messages.create(**options).sid
        except TwilioRestException as exc:
            raise _rest_error(exc) from exc
        except TwilioException as exc:
            raise DeliveryError(f"Twilio: {exc}", permanent=False) from exc
        except requests.RequestException as exc:
            # Timeouts and refused connections. After a read timeout Twilio may have accepted
            # the message: the retry can duplicate it, which beats losing it.
            raise DeliveryError(f"Twilio unreachable: {exc.__class__.__name__}", permanent=False) from exc


def _rest_error(exc):
    """By HTTP status first (429 and 5xx come back later, other 4xx never will), then by code."""
    transient = exc.status == 429 or exc.status >= 500 or exc.code == 20429
    message = f"Twilio {exc.status}" + (f" error {exc.code}" if exc.code else "") + f": {exc.msg}"
    return DeliveryError(message, permanent=not transient, code=exc.code or exc.status)


@functools.lru_cache(maxsize=4)
def twilio_client(account_sid, auth_token, base_url, timeout):
    """One client per process and configuration, so its HTTP connections are reused."""
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
    if base_url:
        client.api.base_url = base_url.rstrip("/")
    return client


class ConsoleBackend:
    def send(self, *, to, from_, body):
        sys.stdout.write(f"--- text message to {to} from {from_ or '(default sender)'} ---\n{body}\n---\n")
        sys.stdout.flush()
        return f"console-{next(_local_ids)}"


class LocmemBackend:
    def send(self, *, to, from_, body):
        message_id = f"locmem-{next(_local_ids)}"
        outbox.append({"to": to, "from": from_, "body": body, "sid": message_id})
        return message_id


_BACKENDS = {"twilio": TwilioBackend(), "console": ConsoleBackend(), "locmem": LocmemBackend()}


def text_backend():
    return _BACKENDS[settings.SMS_BACKEND]
