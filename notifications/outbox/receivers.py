"""Appointment events plan their notifications in the event's own transaction."""

from django.dispatch import receiver

from appointments.signals import appointment_booked, appointment_cancelled, appointment_rescheduled
from notifications.outbox import planning


@receiver(appointment_booked)
def on_booked(sender, appointment, occurred_at, **kwargs):
    planning.plan_booking(appointment, occurred_at)


@receiver(appointment_rescheduled)
def on_rescheduled(sender, appointment, occurred_at, previous_starts_at, **kwargs):
    planning.plan_reschedule(appointment, occurred_at, previous_starts_at)


@receiver(appointment_cancelled)
def on_cancelled(sender, appointment, occurred_at, **kwargs):
    planning.plan_cancellation(appointment, occurred_at)
