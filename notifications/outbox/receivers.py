"""Appointment events plan their notifications in the event's own transaction; a text message
appointments asks for (a verification code) goes through the SMS channel's backend."""

from django.dispatch import receiver

from appointments.signals import (
    TextNotSent,
    appointment_booked,
    appointment_cancelled,
    appointment_rescheduled,
    text_message_requested,
)
from notifications.channels import DeliveryError
from notifications.channels.text import send_one_off_sms
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


@receiver(text_message_requested)
def on_text_message_requested(sender, to, text, **kwargs):
    try:
        send_one_off_sms(to, text)
    except DeliveryError as exc:
        raise TextNotSent(str(exc)) from exc
