"""The appointment write paths. Each runs in one transaction and announces its event."""

from django.db import transaction
from django.utils import timezone

from . import allowance
from .models import Appointment, AppointmentStatus
from .signals import By, appointment_booked, appointment_cancelled, appointment_confirmed, appointment_rescheduled


class AppointmentConflict(Exception):
    """The appointment's state forbids the change (e.g. rescheduling a cancelled one)."""


@transaction.atomic(savepoint=False)
def book(*, patient, provider, starts_at, duration_minutes, location="", reason=""):
    # Inside a transaction already (the view's allowance check, an Idempotency-Key's record), a
    # booking joins it without a savepoint: no caller catches a failed booking to carry on (a
    # reschedule's conflict is caught, so its savepoint stays), and it cost two round trips.
    appointment = Appointment.objects.create(
        patient=patient,
        provider=provider,
        starts_at=starts_at,
        duration_minutes=duration_minutes,
        location=location,
        reason=reason,
    )
    appointment_booked.send(Appointment, appointment=appointment, occurred_at=appointment.created_at)
    return appointment


@transaction.atomic
def reschedule(appointment_id, *, starts_at, by_patient=False):
    """Move the appointment. Moving it to the time it already has changes nothing. A move the
    patient makes themselves counts against their daily allowance (appointments/allowance.py)."""
    appointment = Appointment.objects.select_for_update().select_related("patient").get(pk=appointment_id)
    if appointment.status == AppointmentStatus.CANCELLED:
        raise AppointmentConflict("A cancelled appointment cannot be rescheduled.")
    if appointment.starts_at == starts_at:
        return appointment
    if by_patient:
        allowance.take_change(appointment, "reschedule")
    previous_starts_at = appointment.starts_at
    appointment.starts_at = starts_at
    appointment.sequence += 1  # the row is locked: no lost increment
    appointment.save(update_fields=["starts_at", "sequence", "updated_at"])
    appointment_rescheduled.send(
        Appointment,
        appointment=appointment,
        occurred_at=appointment.updated_at,
        previous_starts_at=previous_starts_at,
    )
    return appointment


@transaction.atomic
def cancel(appointment_id, *, reason="", by_patient=False, by=None):
    """Cancel the appointment. Cancelling it again changes nothing; the patient's own counts
    against their daily allowance. `by` (signals.By) defaults to the patient or staff."""
    by = by or (By.PATIENT if by_patient else By.STAFF)
    appointment = Appointment.objects.select_for_update().select_related("patient").get(pk=appointment_id)
    if appointment.status == AppointmentStatus.CANCELLED:
        return appointment
    if by_patient:
        allowance.take_change(appointment, "cancel")
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancel_reason = reason
    appointment.sequence += 1
    appointment.save(update_fields=["status", "cancel_reason", "sequence", "updated_at"])
    appointment_cancelled.send(Appointment, appointment=appointment, occurred_at=appointment.updated_at, by=by)
    return appointment


@transaction.atomic
def confirm(appointment_id, now=None, by=By.PATIENT):
    """The patient confirms they will come (through `by`, a signals.By). Confirming again keeps
    the first confirmation and announces nothing."""
    now = now or timezone.now()
    appointment = Appointment.objects.select_for_update().select_related("patient").get(pk=appointment_id)
    if appointment.status == AppointmentStatus.CANCELLED:
        raise AppointmentConflict("A cancelled appointment cannot be confirmed.")
    if appointment.starts_at <= now:
        raise AppointmentConflict("An appointment already past cannot be confirmed.")
    if appointment.confirmed_at is None:
        appointment.confirmed_at = now
        appointment.save(update_fields=["confirmed_at", "updated_at"])
        appointment_confirmed.send(Appointment, appointment=appointment, occurred_at=now, by=by)
    return appointment


def next_upcoming(patients, now=None):
    """The earliest appointment still to come of these patients (one phone may be a family's)
    that is not confirmed yet, else the earliest still to come (a C repeated confirms nothing
    new): C after C confirms the next appointment, not the first one again."""
    upcoming = (
        Appointment.objects.filter(
            patient__in=patients, status=AppointmentStatus.SCHEDULED, starts_at__gt=now or timezone.now()
        )
        .select_related("patient")
        .order_by("starts_at", "pk")
    )
    return upcoming.filter(confirmed_at__isnull=True).first() or upcoming.first()
