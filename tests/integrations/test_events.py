"""Each event reaches a registered endpoint as a Standard Webhooks POST `{type, timestamp, data}`,
verified by the receiver with the `standardwebhooks` reference library, from the one place its
thing happens (the real reply path, the API, a real send's death, a real receipt)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import delivery
from integrations.models import WebhookDelivery
from notifications.inbound.receipts import apply_receipt
from notifications.inbound.replies import Inbound, handle_inbound
from notifications.outbox.models import Notification
from notifications.outbox.sweeps import sweep as sweep_notifications

ALL = [
    "appointment.confirmed",
    "appointment.cancelled",
    "patient.opted_out",
    "patient.opted_in",
    "notification.dead",
    "notification.delivery",
]


PHONE = "+14155550111"


def inbound(body, sid, sender=PHONE):
    return handle_inbound(Inbound(sid=sid, sender=sender, to="+15005550006", body=body))


def received_events(receiver):
    assert all(r.verified for r in receiver.received), [r.error for r in receiver.received]
    return [r.event for r in receiver.received]


def test_each_event_type_arrives_signed(endpoint, receiver, book, make_patient, staff_client, patient_client):
    endpoint(events=ALL)
    patient = make_patient(channels=["sms"], phone=PHONE)
    by_reply = book(patient)
    inbound("C", "SM" + "1" * 32)  # confirms by_reply
    by_staff = book(make_patient(channels=["email"], phone=""))
    assert staff_client.post(f"/api/appointments/{by_staff.pk}/confirm/").status_code == 200
    own = book(patient_client.patient)
    assert (
        patient_client.post(f"/api/appointments/{own.pk}/cancel/", {"reason": "away"}, format="json").status_code == 200
    )
    inbound("STOP", "SM" + "2" * 32)
    inbound("START", "SM" + "3" * 32)
    # A real death: Twilio refuses the magic invalid number for good.
    dying = book(make_patient(channels=["sms"], phone="+15005550001"))
    sweep_notifications()
    dead = Notification.objects.get(appointment=dying, channel="sms", kind="booking_confirmation")
    assert dead.is_dead
    sent = Notification.objects.filter(appointment=by_reply, channel="sms", status="sent").first()
    assert apply_receipt(sent.provider_message_id, "delivered", notification_id=sent.pk) == "updated"

    delivery.sweep()

    events = received_events(receiver)
    by_type = {}
    for event in events:
        assert set(event) == {"type", "timestamp", "data"}
        by_type.setdefault(event["type"], []).append(event["data"])
    assert sorted(by_type) == sorted(ALL)
    confirmed = {d["appointment_id"]: d["by"] for d in by_type["appointment.confirmed"]}
    assert confirmed == {by_reply.pk: "reply", by_staff.pk: "staff"}
    assert by_type["appointment.cancelled"] == [
        {
            "appointment_id": own.pk,
            "patient_id": own.patient_id,
            "starts_at": own.starts_at.isoformat(),
            "status": "cancelled",
            "by": "patient",
        }
    ]
    assert by_type["patient.opted_out"] == [{"patient_id": patient.pk, "channel": "sms"}]
    assert by_type["patient.opted_in"] == [{"patient_id": patient.pk, "channel": "sms"}]
    assert [d["notification_id"] for d in by_type["notification.dead"]] == [dead.pk]
    assert by_type["notification.dead"][0]["error_code"] == dead.error_code
    assert [(d["notification_id"], d["delivery_status"]) for d in by_type["notification.delivery"]] == [
        (sent.pk, "delivered")
    ]
    assert WebhookDelivery.objects.exclude(status="sent").count() == 0


def test_an_endpoint_hears_only_the_events_it_asked_for(endpoint, receiver, book, staff_client):
    endpoint(path="/cancelled-only", events=["appointment.cancelled"])
    appointment = book()
    staff_client.post(f"/api/appointments/{appointment.pk}/confirm/")
    staff_client.post(f"/api/appointments/{appointment.pk}/cancel/", {}, format="json")
    delivery.sweep()
    assert [(e["type"], e["data"]["by"]) for e in received_events(receiver)] == [("appointment.cancelled", "staff")]


def test_consent_changed_through_the_api_is_announced_as_a_reply_is(endpoint, receiver, make_patient, staff_client):
    endpoint(events=["patient.opted_out", "patient.opted_in"])
    patient = make_patient(channels=["sms", "email"], phone=PHONE)

    out = staff_client.patch(f"/api/patients/{patient.pk}/", {"opted_out": ["sms", "email"]}, format="json")
    back_in = staff_client.patch(f"/api/patients/{patient.pk}/", {"opted_out": ["email"]}, format="json")
    same = staff_client.patch(f"/api/patients/{patient.pk}/", {"opted_out": ["email"]}, format="json")
    delivery.sweep()

    assert (out.status_code, back_in.status_code, same.status_code) == (200, 200, 200)
    assert sorted((e["type"], e["data"]["channel"]) for e in received_events(receiver)) == [
        ("patient.opted_in", "sms"),
        ("patient.opted_out", "email"),
        ("patient.opted_out", "sms"),
    ]


def test_an_event_rolled_back_with_its_change_is_never_sent(endpoint, receiver, book):
    """The row is written in the transaction of the thing that happened: no change, no event."""
    from django.db import transaction

    from appointments import services

    endpoint()
    appointment = book()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.confirm(appointment.pk, by="staff")
        raise RuntimeError("the confirmation's transaction fails")
    delivery.sweep()
    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


def test_confirming_again_announces_nothing(endpoint, receiver, book):
    from appointments import services

    endpoint()
    appointment = book()
    services.confirm(appointment.pk, by="staff")
    services.confirm(appointment.pk, by="staff", now=timezone.now() + timedelta(seconds=1))
    assert WebhookDelivery.objects.count() == 1


def test_a_row_that_dies_of_its_lease_is_announced_dead(endpoint, receiver, book, settings):
    """The other way a row dies: its worker vanished on the last attempt."""
    from notifications.outbox.sweeps import reclaim_expired_leases

    endpoint(events=["notification.dead"])
    appointment = book()
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    claimed = Notification.objects.filter(appointment=appointment, kind="booking_confirmation").claim()
    settings.NOTIFICATIONS_LEASE_SECONDS = 0  # the claimer vanished and its lease has passed
    assert reclaim_expired_leases()["dead"] == len(claimed) > 0
    settings.NOTIFICATIONS_LEASE_SECONDS = 300  # the webhooks' own claims hold as usual
    delivery.sweep()
    assert sorted(e["data"]["notification_id"] for e in received_events(receiver)) == sorted(n.pk for n in claimed)


def test_a_confirmation_and_a_cancellation_from_the_patients_link_say_by_link(
    endpoint, receiver, book, make_patient, client
):
    from appointments.links import token_for

    endpoint(events=["appointment.confirmed", "appointment.cancelled"])
    appointment = book(make_patient(channels=["email"], phone=""))
    page = f"/a/{token_for(appointment.pk)}/"

    assert client.post(page, {"action": "confirm"}).status_code == 303
    assert client.post(page, {"action": "cancel"}).status_code == 303
    delivery.sweep()

    by = {event["type"]: event["data"]["by"] for event in received_events(receiver)}
    assert by == {"appointment.confirmed": "link", "appointment.cancelled": "link"}
