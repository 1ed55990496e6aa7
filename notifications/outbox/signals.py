"""What the outbox and the inbound room announce, each from the one place it happens and inside
its transaction, so a receiver's writes (an event for the clinic's systems) commit with it.

notification_dead: `notification` (a row that just died: its fallback is planned beside).
consent_changed: `patient_id`, `channel`, `opted_out` (True: the patient opted out of it).
delivery_status_recorded: `notification` (its delivery_status and delivery_error_code just moved up)."""

from django.dispatch import Signal

notification_dead = Signal()
consent_changed = Signal()
delivery_status_recorded = Signal()
