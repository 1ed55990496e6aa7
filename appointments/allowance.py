"""How many appointments a patient may book for themselves: BOOKINGS_PER_PATIENT_PER_HOUR in any
hour (staff are not limited). Counted from the appointments table itself, so the limit holds
across web processes and needs no broker or cache. Likewise the reschedules and cancellations a
patient makes themselves: PATIENT_CHANGES_PER_DAY in any 24 hours, counted in PatientChange."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied, Throttled

from .models import Appointment, ContactCodeSent, Patient, PatientChange

WINDOW = timedelta(hours=1)


def check(patient, now=None):
    """Raise Throttled (429 with Retry-After) when the patient has booked their allowance in the last
    hour. Call it inside the booking's transaction: the patient's row is locked, so two bookings
    racing each other are counted one after the other."""
    now = now or timezone.now()
    Patient.objects.select_for_update().filter(pk=patient.pk).exists()
    limit = settings.BOOKINGS_PER_PATIENT_PER_HOUR
    if limit <= 0:
        raise PermissionDenied("Appointments are booked by the clinic; please call the clinic.")
    recent = Appointment.objects.filter(patient=patient, created_at__gt=now - WINDOW).order_by("-created_at")
    booked = list(recent.values_list("created_at", flat=True)[:limit])
    if len(booked) >= limit:
        wait = (booked[-1] + WINDOW - now).total_seconds()
        raise Throttled(wait=wait, detail=f"At most {limit} bookings an hour; try again in {int(wait) + 1} s.")


CHANGES_WINDOW = timedelta(days=1)


def take_change(appointment, action, now=None):
    """Count a reschedule or cancellation the patient makes themselves, or raise Throttled (429
    with Retry-After) when they made PATIENT_CHANGES_PER_DAY in the last 24 hours. Call it in the
    change's transaction: the patient's row is locked, and a refusal undoes the change."""
    now = now or timezone.now()
    patient = appointment.patient
    Patient.objects.select_for_update().filter(pk=patient.pk).exists()
    limit = settings.PATIENT_CHANGES_PER_DAY
    if limit <= 0:
        raise PermissionDenied("Appointments are changed by the clinic; please call the clinic.")
    recent = PatientChange.objects.filter(patient=patient, at__gt=now - CHANGES_WINDOW).order_by("-at")
    made = list(recent.values_list("at", flat=True)[:limit])
    if len(made) >= limit:
        wait = (made[-1] + CHANGES_WINDOW - now).total_seconds()
        raise Throttled(wait=wait, detail=f"At most {limit} changes a day; try again in {int(wait) + 1} s.")
    PatientChange.objects.create(patient=patient, appointment=appointment, action=action, at=now)


# The allowances' records are kept past their longest window (a day) by a day's margin, then go:
# a code's destination is personal data kept for nothing else.
RECORDS_KEPT = timedelta(days=2)


def purge_expired(now=None):
    """Delete the verification codes' and patients' changes' records past RECORDS_KEPT."""
    cutoff = (now or timezone.now()) - RECORDS_KEPT
    codes = ContactCodeSent.objects.filter(sent_at__lt=cutoff).delete()[0]
    return codes + PatientChange.objects.filter(at__lt=cutoff).delete()[0]
