"""Twilio's delivery receipts (status callbacks)."""

import logging
import re
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from .models import DELIVERY_RANK, Notification

logger = logging.getLogger(__name__)

# A message's SID (SM… for SMS and WhatsApp, MM… for MMS) and the shape of a status word, so
# that a status Twilio adds later is accepted while a garbled field is refused.
MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
STATUS_WORD = re.compile(r"^[a-z][a-z_-]{0,31}$")


def signed_url(request, configured_url):
    """The URL Twilio signed: the public URL we gave it when configured (right behind any
    proxy) with this request's query (the row's id in a status callback), else this request's
    URL as the proxy settings let Django rebuild it."""
    if not configured_url:
        return request.build_absolute_uri()
    scheme, netloc, path, _, _ = urlsplit(configured_url)
    return urlunsplit((scheme, netloc, path, request.META.get("QUERY_STRING", ""), ""))


@csrf_exempt
@require_POST
def twilio_status(request):
    try:
        params = request.POST
    except (SuspiciousOperation, BadRequest, MultiPartParserError) as exc:
        # Oversized, too many fields, not UTF-8, broken multipart: a JSON 400 like every other
        # refusal here (and no crash of DEBUG's error page, which would read the body again).
        logger.warning("unreadable status callback body: %s", exc.__class__.__name__)
        return JsonResponse({"body": [str(exc) or "Unreadable request body."]}, status=400)
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    if not (
        signature
        and settings.TWILIO_AUTH_TOKEN
        and validator.validate(signed_url(request, settings.TWILIO_STATUS_CALLBACK_URL), params, signature)
    ):
        return JsonResponse({"X-Twilio-Signature": ["Missing or invalid signature."]}, status=403)

    sid = params.get("MessageSid", "")
    status = params.get("MessageStatus", "")
    errors = {}
    if not MESSAGE_SID.match(sid):
        errors["MessageSid"] = ["This field is required." if not sid else "Not a Twilio message SID."]
    if not STATUS_WORD.match(status):
        errors["MessageStatus"] = ["This field is required." if not status else "Not a Twilio message status."]
    if errors:
        return JsonResponse(errors, status=400)
    if status not in DELIVERY_RANK:
        # Twilio adds statuses from time to time; refusing one would only make it retry.
        logger.info("delivery receipt for %s with a status we do not rank: %r", sid, status)
        return JsonResponse({"updated": False})

    error_code = params.get("ErrorCode", "")[:16]
    if Notification.objects.record_delivery_status(sid, status, error_code):
        return JsonResponse({"updated": True})
    if not Notification.objects.filter(provider_message_id=sid).exists():
        logger.info("delivery receipt for unknown message %s (%s)", sid, status)
    return JsonResponse({"updated": False})
