"""Twilio's delivery receipts (status callbacks)."""
import logging

from django.conf import settings
from django.http import JsonResponse
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
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    if not (signature and settings.TWILIO_AUTH_TOKEN and validator.validate(signed_url(request), request.POST, signature)):
        return JsonResponse({"X-Twilio-Signature": ["Missing or invalid signature."]}, status=403)

    sid = request.POST.get("MessageSid", "")
    status = request.POST.get("MessageStatus", "")
    errors = {}
    if not sid:
        errors["MessageSid"] = ["This field is required."]
    if status not in DELIVERY_RANK or not status:
        errors["MessageStatus"] = [f"Unknown status {status!r}."]
    if errors:
        return JsonResponse(errors, status=400)

    error_code = request.POST.get("ErrorCode", "")[:16]
    if Notification.objects.record_delivery_status(sid, status, error_code):
        return JsonResponse({"updated": True})
    if not Notification.objects.filter(provider_message_id=sid).exists():
        logger.info("delivery receipt for unknown message %s (%s)", sid, status)
    return JsonResponse({"updated": False})
