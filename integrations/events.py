"""The events the clinic's systems hear, written as delivery rows in the transaction of the thing
that happened (a transactional outbox: they commit or roll back with it) and published to the
webhooks queue after the commit. Each is heard from the one place it happens: the appointment
services' domain signals, the outbox's consent, death and receipt signals."""

import json
from datetime import UTC

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from appointments.signals import appointment_cancelled, appointment_confirmed, consent_changed
from integrations.models import EventType, WebhookDelivery, WebhookEndpoint
from notifications.outbox.dispatch import publish
from notifications.outbox.signals import delivery_status_recorded, notification_dead

# The task that posts the rows one event wrote (tasks/webhooks.py), on the webhooks queue.
DELIVER_WEBHOOKS = "integrations.deliver_webhooks"


def emit(event_type, data, occurred_at=None):
    """One delivery row per endpoint that wants this event, each with its own webhook-id and the
    same body `{type, timestamp, data}`; published once the transaction commits."""
    endpoints = [e for e in WebhookEndpoint.objects.only("id", "events") if event_type in e.events]
    if not endpoints:
        return []
    timestamp = (occurred_at or timezone.now()).astimezone(UTC).isoformat().replace("+00:00", "Z")
    body = json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":"))
    rows = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=e, event_type=event_type, body=body) for e in endpoints]
    )
    ids = [row.pk for row in rows]  # bulk_create reads them back (RETURNING) on PostgreSQL and SQLite
    transaction.on_commit(lambda: publish(DELIVER_WEBHOOKS, ids, "webhook delivery(ies)"))
    return ids


def _appointment(appointment):
    return {
        "appointment_id": appointment.pk,
        "patient_id": appointment.patient_id,
        "starts_at": appointment.starts_at.isoformat(),
        "status": appointment.status,
    }


@receiver(appointment_confirmed)
def on_confirmed(sender, appointment, occurred_at, by, **kwargs):
    emit(EventType.APPOINTMENT_CONFIRMED, _appointment(appointment) | {"by": by}, occurred_at)


@receiver(appointment_cancelled)
def on_cancelled(sender, appointment, occurred_at, by=None, **kwargs):
    emit(EventType.APPOINTMENT_CANCELLED, _appointment(appointment) | {"by": by}, occurred_at)


@receiver(consent_changed)
def on_consent_changed(sender, patient_id, channel, opted_out, **kwargs):
    event_type = EventType.PATIENT_OPTED_OUT if opted_out else EventType.PATIENT_OPTED_IN
    emit(event_type, {"patient_id": patient_id, "channel": channel})


def _notification(row):
    return {
        "notification_id": row.pk,
        "appointment_id": row.appointment_id,
        "patient_id": row.patient_id,
        "channel": row.channel,
        "kind": row.kind,
    }


@receiver(notification_dead)
def on_dead(sender, notification, **kwargs):
    emit(
        EventType.NOTIFICATION_DEAD,
        _notification(notification) | {"error_code": notification.error_code, "attempts": notification.attempts},
        notification.died_at,
    )


@receiver(delivery_status_recorded)
def on_delivery_status(sender, notification, **kwargs):
    data = {"delivery_status": notification.delivery_status, "error_code": notification.delivery_error_code}
    emit(EventType.NOTIFICATION_DELIVERY, _notification(notification) | data)
