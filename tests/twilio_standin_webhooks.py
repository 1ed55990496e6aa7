"""What the stand-in Twilio posts to us, signed with the account's auth token as Twilio signs
its webhooks: message status callbacks and patients' inbound messages. Only loopback URLs are
posted to; any other is recorded and left alone."""

import threading
import urllib.request
import uuid
from dataclasses import dataclass
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Twilio's default opt-out, opt-in and help keywords for SMS (Advanced Opt-Out); Twilio
# matches the whole message, trimmed, in any case.
OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
OPT_IN_WORDS = {"START", "YES", "UNSTOP"}
HELP_WORDS = {"HELP", "INFO"}


@dataclass
class Posted:
    url: str
    params: dict
    headers: dict
    status: int | None  # None: not posted (not a loopback URL, or the connection failed)
    body: str = ""


class WebhookPoster:
    def __init__(self, auth_token):
        self.auth_token = auth_token
        self.posted = []
        self._lock = threading.Lock()

    def post(self, url, params, headers=None):
        """POST params form-encoded to url with Twilio's signature; returns the Posted record."""
        headers = {
            "X-Twilio-Signature": RequestValidator(self.auth_token).compute_signature(url, params),
            **(headers or {}),
        }
        record = Posted(url, dict(params), headers, None)
        if urlsplit(url).hostname in LOOPBACK:
            request = urllib.request.Request(
                url,
                data=urlencode(params).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    record.status, record.body = answer.status, answer.read().decode()
            except HTTPError as exc:
                record.status, record.body = exc.code, exc.read().decode()
            except URLError:
                pass
        with self._lock:
            self.posted.append(record)
        return record

    def post_later(self, delay, url, params, headers=None):
        """Post from a thread after delay seconds, as Twilio's callbacks come: apart from the API call."""
        timer = threading.Timer(delay, self.post, (url, params, headers))
        timer.daemon = True
        timer.start()

    def reset(self):
        with self._lock:
            self.posted.clear()


def status_params(account_sid, message, status, error_code=None):
    """The fields of a message status callback."""
    params = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "From": message["from"],
        "To": message["to"],
        "MessageSid": message["sid"],
        "SmsSid": message["sid"],
        "MessageStatus": status,
        "SmsStatus": status,
    }
    if error_code:
        params["ErrorCode"] = str(error_code)
    return params


def inbound_params(account_sid, from_, to, body):
    """The fields of an incoming message webhook, with Advanced Opt-Out's OptOutType for SMS."""
    sid = "SM" + uuid.uuid4().hex
    params = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "From": from_,
        "To": to,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
    }
    word = body.strip().upper()
    if from_.startswith("whatsapp:"):
        params.update(WaId=from_.removeprefix("whatsapp:+"), ProfileName="Patient")
    elif word in OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS:
        params["OptOutType"] = "STOP" if word in OPT_OUT_WORDS else "START" if word in OPT_IN_WORDS else "HELP"
    return params


def idempotency_header(token=None):
    return {"I-Twilio-Idempotency-Token": token or str(uuid.uuid4())}
