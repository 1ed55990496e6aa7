"""Twilio's webhooks: delivery receipts (status callbacks) and patients' messages (inbound).
Both are signed by Twilio with the account's auth token; both only parse and hand over."""

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from notifications.channels.text import NOTIFICATION_PARAMETER
from notifications.inbound.receipts import apply_receipt
from notifications.inbound.replies import Inbound, handle_inbound

logger = logging.getLogger(__name__)

# A message's SID (SM… for SMS and WhatsApp, MM… for MMS) and the shape of a status word, so
# that a status Twilio adds later is accepted while a garbled field is refused.
MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
STATUS_WORD = re.compile(r"^[a-z][a-z_-]{0,31}$")
ADDRESS = re.compile(r"^(whatsapp:)?\+[1-9][0-9]{6,14}$")
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"


def signed_url(request, configured_url):
    """The URL Twilio signed: the public URL we gave it when configured (right behind any
    proxy) with this request's query (the row's id in a status callback), else this request's
    URL as the proxy settings let Django rebuild it."""
    if not configured_url:
        return request.build_absolute_uri()
    scheme, netloc, path, _, _ = urlsplit(configured_url)
    return urlunsplit((scheme, netloc, path, request.META.get("QUERY_STRING", ""), ""))


def signed_params(request, configured_url):
    """The form Twilio posted, or the JSON 4xx refusing the request."""
    try:
        params = request.POST
    except (SuspiciousOperation, BadRequest, MultiPartParserError) as exc:
        # Oversized, too many fields, not UTF-8, broken multipart: a JSON 400 like every other
        # refusal here (and no crash of DEBUG's error page, which would read the body again).
        logger.warning("unreadable Twilio webhook body: %s", exc.__class__.__name__)
        return None, JsonResponse({"body": [str(exc) or "Unreadable request body."]}, status=400)
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    if not (
        signature
        and settings.TWILIO_AUTH_TOKEN
        and validator.validate(signed_url(request, configured_url), params, signature)
    ):
        return None, JsonResponse({"X-Twilio-Signature": ["Missing or invalid signature."]}, status=403)
    return params, None


def _required(errors, params, name, pattern, what):
    value = params.get(name, "")
    if not pattern.match(value):
        errors[name] = ["This field is required." if not value else f"Not {what}."]
    return value


@csrf_exempt
@require_POST
def twilio_status(request):
    params, refusal = signed_params(request, settings.TWILIO_STATUS_CALLBACK_URL)
    if refusal:
        return refusal
    errors = {}
    sid = _required(errors, params, "MessageSid", MESSAGE_SID, "a Twilio message SID")
    status = _required(errors, params, "MessageStatus", STATUS_WORD, "a Twilio message status")
    notification_id = request.GET.get(NOTIFICATION_PARAMETER)
    if notification_id is not None and not (notification_id.isascii() and notification_id.isdigit()):
        errors[NOTIFICATION_PARAMETER] = ["Not a notification id."]
    if errors:
        return JsonResponse(errors, status=400)
    result = apply_receipt(
        sid,
        status,
        params.get("ErrorCode", "")[:16],
        notification_id=int(notification_id) if notification_id is not None else None,
        idempotency_token=request.headers.get(IDEMPOTENCY_HEADER, "")[:128],
    )
    answer = {"updated": result == "updated"}
    if result == "repeated":
        answer["repeated"] = True
    return JsonResponse(answer)


@csrf_exempt
@require_POST
def twilio_inbound(request):
    """A patient's SMS or WhatsApp message; the answer is TwiML (an empty Response sends nothing)."""
    params, refusal = signed_params(request, settings.TWILIO_INBOUND_URL)
    if refusal:
        return refusal
    errors = {}
    sid = _required(errors, params, "MessageSid", MESSAGE_SID, "a Twilio message SID")
    sender = _required(errors, params, "From", ADDRESS, "a phone number or whatsapp: address")
    if errors:
        return JsonResponse(errors, status=400)
    # PostgreSQL's text refuses NUL characters; nothing a patient types needs them.
    to, body = (params.get(name, "").replace("\x00", "") for name in ("To", "Body"))
    inbound = Inbound(sid=sid, sender=sender, to=to[:64], body=body[:1600])
    return HttpResponse(str(handle_inbound(inbound)), content_type="text/xml")
