"""Twilio's delivery receipts (status callbacks)."""

import logging

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from .models import DELIVERY_RANK, Notification

logger = logging.getLogger(__name__)


def signed_url(request):
    """The URL Twilio signed: the callback URL we gave it when configured (right behind any
    proxy), else this request's URL as the proxy settings let Django rebuild it."""
    if settings.TWILIO_STATUS_CALLBACK_URL:
        return settings.TWILIO_STATUS_CALLBACK_URL
    return request.build_absolute_uri()


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
    if not (signature and settings.TWILIO_AUTH_TOKEN and validator.validate(signed_url(request), params, signature)):
        return JsonResponse({"X-Twilio-Signature": ["Missing or invalid signature."]}, status=403)

    sid = params.get("MessageSid", "")
    status = params.get("MessageStatus", "")
    errors = {}
    if not sid:
        errors["MessageSid"] = ["This field is required."]
    if not status:
        errors["MessageStatus"] = ["This field is required."]
    if errors:
        return JsonResponse(errors, status=400)
    if status not in DELIVERY_RANK:
        # Twilio adds statuses from time to time; refusing one would only make it retry.
        logger.info("delivery receipt for %s with a status we do not rank: %r", sid, status[:32])
        return JsonResponse({"updated": False})

    error_code = params.get("ErrorCode", "")[:16]
    if Notification.objects.record_delivery_status(sid, status, error_code):
        return JsonResponse({"updated": True})
    if not Notification.objects.filter(provider_message_id=sid).exists():
        logger.info("delivery receipt for unknown message %s (%s)", sid, status)
    return JsonResponse({"updated": False})
