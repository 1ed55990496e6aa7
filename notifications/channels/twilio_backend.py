"""Text messages through Twilio's Messages API, with the twilio client. Twilio's and the
network's errors are translated to DeliveryError here and nowhere else."""

import contextlib
import functools
import itertools
import json
from datetime import timedelta

import urllib3
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from .base import UNANSWERED, DeliveryError
from .twilio_http import PooledHttpClient

# How far Twilio's clock may be behind ours: a message it accepted is looked for from this long
# before the row's send started (date_created is Twilio's clock, send_started_at ours).
CLOCK_SKEW = timedelta(minutes=2)
# Messages a look-up reads per page (Twilio's most is 1,000): every page of the window is read.
LOOKUP_PAGE_SIZE = 100


class TwilioBackend:
    def send(self, *, to, from_, body, look_first_since=None, content=None, status_callback="", taken=None):
        """Send a message (its body, or a Content Template) and return its sid. With
        look_first_since (this row's send that started then may have reached Twilio), a message
        with this text that Twilio accepted since then, and that is not another row's (taken:
        sid -> bool), counts as sent."""
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
                text = _content_text(client, content) if content else body
                sid = _look_up(client, to, from_, text, look_first_since, taken or (lambda sid: False))
                if sid:
                    return sid
            return client.messages.create(**options).sid


def _look_up(client, to, from_, text, since, taken):
    """The sid of a message with this text that Twilio accepted from `from_` to `to` since
    `since` (less the clock skew), not another row's; None when there is none. Every page of
    Twilio's list in the window is read (DateSent, whole days as Twilio documents it; the
    window's own start is checked here, on date_created), then the newest page unfiltered."""
    since = since.replace(microsecond=0) - CLOCK_SKEW  # Twilio's are whole seconds
    listings = (
        lambda: client.messages.stream(to=to, from_=from_, date_sent_after=since, page_size=LOOKUP_PAGE_SIZE),
        # Read only when nothing above matched: Twilio fills date_sent as a message leaves its
        # queue, so one still queued is listed only unfiltered, among the newest.
        lambda: client.messages.stream(to=to, from_=from_, limit=LOOKUP_PAGE_SIZE),
    )
    for message in itertools.chain.from_iterable(listing() for listing in listings):
        if message.body == text and message.date_created and message.date_created >= since:
            if not taken(message.sid):
                return message.sid
    return None


def _content_text(client, content):
    """The text Twilio lists for a Content Template message: the template's text, read from
    Twilio's Content API, with the variables in."""
    text = _template_text(client, content.sid)
    for key, value in content.variables.items():
        text = text.replace("{{" + str(key) + "}}", str(value))
    return text


@functools.lru_cache(maxsize=64)
def _template_text(client, content_sid):
    """A Content Template's text (its body, of whichever type has one); an approved template
    cannot change, so it is read once per process."""
    types = client.content.v1.contents(content_sid).fetch().types or {}
    return next((kind["body"] for kind in types.values() if isinstance(kind, dict) and "body" in kind), "")


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
        client.content.base_url = base_url.rstrip("/")
    return client
