"""Twilio's webhooks as the stand-in would post them, through Django's test client in this
process (the same views, signed as Twilio signs them), so the simulation stays one thread."""

import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.test import Client
from twilio.request_validator import RequestValidator

from notifications.channels.text import NOTIFICATION_PARAMETER
from tests.twilio_standin_webhooks import inbound_params, status_params


@dataclass(frozen=True)
class Answer:
    token: str  # the idempotency token posted
    row_id: int  # the row the callback URL names


def _post(twilio, url, params, token):
    """POST params to our view at url, signed; fails unless the view answers 200."""
    parts = urlsplit(url)
    response = Client().post(
        f"{parts.path}?{parts.query}" if parts.query else parts.path,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={
            "X-Twilio-Signature": RequestValidator(twilio.auth_token).compute_signature(url, params),
            "I-Twilio-Idempotency-Token": token,
        },
    )
    assert response.status_code == 200, (url, params, response.status_code, response.content)
    return response


def post_status(twilio, message, status, error_code=None, token=None):
    """A status callback for a message the stand-in accepted; token: Twilio's retry of an earlier one."""
    url = twilio.callback_of(message["sid"])
    token = token or str(uuid.uuid4())
    _post(twilio, url, status_params(twilio.account_sid, message, status, error_code), token)
    return Answer(token, int(parse_qs(urlsplit(url).query)[NOTIFICATION_PARAMETER][0]))


def post_inbound(twilio, phone, body):
    """A patient's SMS to the clinic's number: Twilio acts on it (opt-out words), then posts it."""
    to = settings.TWILIO_PHONE_NUMBER
    twilio.note_inbound(phone, body, to)
    response = _post(twilio, settings.TWILIO_INBOUND_URL, inbound_params(twilio.account_sid, phone, to, body), "")
    return response.content.decode()
