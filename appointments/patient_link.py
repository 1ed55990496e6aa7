"""/a/{token}/: the page a patient's link opens (appointments/links.py makes the token).

GET shows the appointment as it is now, in the patient's language and zone, with Confirm and
Cancel; it never acts, since mail scanners and link previews follow links. The POST (a form with
Django's CSRF token, field `action`) acts through the same services as the API, then redirects
back to the page, which shows the result. A token that is tampered with, names no appointment
or has expired gets the same bare 404 page; requests are limited per token and per client."""

import hashlib
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils import dateformat, timezone, translation
from django.utils.translation import pgettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from . import services
from .links import appointment_for
from .models import AppointmentStatus, Clinic
from .signals import By

ACTIONS = ("confirm", "cancel")


@never_cache
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def appointment_link(request, token):
    if _over_limit(request, token):
        response = render(request, "appointments/link_limited.html", status=429)
        response["Retry-After"] = "60"
        return response
    appointment = appointment_for(token)
    if appointment is None:
        return render(request, "appointments/link_not_found.html", status=404)
    patient = appointment.patient
    with translation.override(patient.language), timezone.override(_zone(patient.timezone)):
        if request.method == "POST":
            return _act(request, appointment)
        return _page(request, appointment)


def _act(request, appointment):
    action = request.POST.get("action")
    if action not in ACTIONS:
        return _page(request, appointment, problem="unknown action", status=400)
    try:
        if action == "confirm":
            services.confirm(appointment.pk, by=By.LINK)
        else:
            services.cancel(
                appointment.pk, reason="cancelled by the patient from their link", by_patient=True, by=By.LINK
            )
    except services.AppointmentConflict as exc:
        return _page(request, appointment, problem=str(exc), status=409)
    except Throttled:
        return _page(request, appointment, problem="too many changes", status=429)
    # Post/redirect/get: a reload shows the page again rather than posting twice.
    return HttpResponseRedirect(request.path + f"?done={action}", status=303)


def _page(request, appointment, problem="", status=200):
    appointment.refresh_from_db()
    local = timezone.localtime(appointment.starts_at)
    cancelled = appointment.status == AppointmentStatus.CANCELLED
    context = {
        "appointment": appointment,
        "patient": appointment.patient,
        "clinic": Clinic.current(),
        "date": dateformat.format(local, pgettext("date in a message (Django date format)", "l j F Y")),
        "time": dateformat.format(local, pgettext("time in a message (Django date format)", "H:i T")),
        "cancelled": cancelled,
        "confirmed": appointment.confirmed_at is not None and not cancelled,
        "done": request.GET.get("done") if request.GET.get("done") in ACTIONS else "",
        "problem": problem,
    }
    return render(request, "appointments/link.html", context, status=status)


def _zone(name):
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _over_limit(request, token):
    """Count this request against its token and its client (the socket's address or the trusted
    proxies', as DRF's throttles see it); True past APPOINTMENT_LINK_RATE_PER_MINUTE of either."""
    limit = settings.APPOINTMENT_LINK_RATE_PER_MINUTE
    window = int(timezone.now().timestamp() // 60)
    client = BaseThrottle().get_ident(request)
    over = False
    token_key = hashlib.sha256(token.encode()).hexdigest()[:32]
    for key in (f"link:token:{token_key}:{window}", f"link:client:{client}:{window}"):
        cache.add(key, 0, timeout=120)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            count = 1
        over = over or count > limit
    return over
