"""GET /api/patients/{id}/export/: everything held about the patient, one JSON document, streamed
in chunks; the patient for themselves or staff with the export permission; no one else."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from notifications.models import DeliveryReceipt, InboundMessage, Notification, NotificationAttempt
from privacy.export import FORMAT_VERSION
from privacy.models import AccessLogEntry
from tests.conftest import token_client


def read(response):
    assert response.streaming
    chunks = list(response.streaming_content)
    return chunks, json.loads(b"".join(chunks))


@pytest.fixture
def exporter(django_user_model):
    user = django_user_model.objects.create_user("records", "records@clinic.example", "records-pass-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="export_patient"))
    return token_client(user)


def test_a_patient_exports_everything_held_about_them(patient_client, book, exporter):
    patient = patient_client.patient
    appointment = book(patient=patient, reason="Knee pain")
    row = appointment.notifications.first()
    Notification.objects.filter(pk=row.pk).update(
        status="sent", rendered_text="See you Monday", provider_message_id="SM1"
    )
    NotificationAttempt.objects.create(notification=row, number=1, finished_at=timezone.now(), outcome="sent")
    DeliveryReceipt.objects.create(notification=row, message_sid="SM1", status="delivered")
    InboundMessage.objects.create(
        patient=patient, channel="sms", from_number=patient.phone, body="STOP", message_sid="SMin", action="opted_out"
    )
    read(exporter.get(f"/api/patients/{patient.pk}/export/"))  # a staff read: in the trail, so in the export

    chunks, document = read(patient_client.get(f"/api/patients/{patient.pk}/export/"))

    assert document["format_version"] == FORMAT_VERSION
    assert document["patient"]["email"] == patient.email
    assert document["appointments"][0]["reason"] == "Knee pain"
    exported = {n["id"]: n for n in document["notifications"]}
    assert exported[row.pk]["rendered_text"] == "See you Monday"
    assert exported[row.pk]["attempt_log"][0]["outcome"] == "sent"
    assert exported[row.pk]["receipts"][0]["status"] == "delivered"
    assert [m["body"] for m in document["inbound_messages"]] == ["STOP"]
    assert [o["action"] for o in document["opt_outs"]] == ["opted_out"]
    assert [e["username"] for e in document["access_log"]] == ["records"]
    for name in ("contact_changes", "confirmations"):
        assert document[name] == []


def test_staff_with_the_export_permission_export_a_patient_and_the_export_is_in_the_trail(exporter, make_patient):
    patient = make_patient()

    _, document = read(exporter.get(f"/api/patients/{patient.pk}/export/"))

    assert document["patient"]["id"] == patient.pk
    assert list(AccessLogEntry.objects.values_list("patient_id", "action")) == [(patient.pk, "patient.export")]


def test_another_patient_cannot_export_a_patient(patient_client, make_patient):
    other = make_patient()

    response = patient_client.get(f"/api/patients/{other.pk}/export/")

    assert response.status_code == 404


def test_staff_without_the_export_permission_are_refused(staff_client, make_patient):
    # The clinic manager's role reads patients but does not hold the export permission.
    assert staff_client.get(f"/api/patients/{make_patient().pk}/export/").status_code == 403


def test_a_patient_with_many_rows_is_exported_in_chunks(patient_client, book):
    patient = patient_client.patient
    appointment = book(patient=patient)
    start = timezone.now() - timedelta(days=400)
    many = 3000
    rows = Notification.objects.bulk_create(
        Notification(
            appointment=appointment,
            patient=patient,
            kind="reminder",
            channel="sms",
            status="sent",
            scheduled_for=start + timedelta(minutes=n),
            recipient=patient.phone,
            rendered_text=f"Reminder number {n}",
        )
        for n in range(many)
    )
    NotificationAttempt.objects.bulk_create(
        NotificationAttempt(notification=row, number=1, finished_at=row.scheduled_for, outcome="sent") for row in rows
    )

    chunks, document = read(patient_client.get(f"/api/patients/{patient.pk}/export/"))

    texts = {n["rendered_text"] for n in document["notifications"]}
    assert {f"Reminder number {n}" for n in range(many)} <= texts
    assert sum(len(n["attempt_log"]) for n in document["notifications"]) == many
    # Written as it is read: many chunks, none of them the whole document.
    assert len(chunks) > 5
    assert max(len(chunk) for chunk in chunks) < 200_000
