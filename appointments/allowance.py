"""How many appointments a patient may book for themselves: BOOKINGS_PER_PATIENT_PER_HOUR in any
hour (staff are not limited). Counted from the appointments table itself, so the limit holds
across web processes and needs no broker or cache."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework.exceptions import Throttled

from .models import Appointment, Patient

WINDOW = timedelta(hours=1)


def check(patient, now=None):
    """Raise Throttled (429 with Retry-After) when the patient has booked their allowance in the last
    hour. Call it inside the booking's transaction: the patient's row is locked, so two bookings
    racing each other are counted one after the other."""
    now = now or timezone.now()
    Patient.objects.select_for_update().filter(pk=patient.pk).exists()
    limit = settings.BOOKINGS_PER_PATIENT_PER_HOUR
    recent = Appointment.objects.filter(patient=patient, created_at__gt=now - WINDOW).order_by("-created_at")
    booked = list(recent.values_list("created_at", flat=True)[:limit])
    if len(booked) >= limit:
        wait = (booked[-1] + WINDOW - now).total_seconds()
        raise Throttled(wait=wait, detail=f"At most {limit} bookings an hour; try again in {int(wait) + 1} s.")
