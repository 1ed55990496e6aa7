"""What the outbox and the inbound room announce, each from the one place it happens and inside
its transaction, so a receiver's writes (an event for the clinic's systems) commit with it.

notification_dead: `notification` (a row that just died: its fallback is planned beside).
delivery_status_recorded: `notification` (its delivery_status and delivery_error_code just moved up).

A change of consent is the patient's, announced by appointments.signals.consent_changed."""

from django.dispatch import Signal

notification_dead = Signal()
delivery_status_recorded = Signal()
