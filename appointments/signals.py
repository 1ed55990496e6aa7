"""Domain events. Each is sent inside the transaction that changed the appointment, so a
receiver's writes commit or roll back with it. Arguments: appointment, occurred_at, and for a
reschedule previous_starts_at."""

from django.dispatch import Signal

appointment_booked = Signal()
appointment_rescheduled = Signal()
appointment_cancelled = Signal()
