"""Patients read a plain reason in `last_error`, never the SMTP server's or Twilio's words; staff
keep the detail."""

import pytest

from notifications.models import Notification

DETAIL = "Twilio 400 error 21211: The 'To' number +14155550100 is not a valid phone number."


@pytest.fixture
def dead_sms(book, patient_client):
    appointment = book(patient=patient_client.patient)
    row = appointment.notifications.get(kind="booking_confirmation", channel="sms")
    Notification.objects.filter(pk=row.pk).update(
        status="failed", last_error=DETAIL, error_code="21211", next_attempt_at=None
    )
    return row


def rows_seen_by(client, row):
    response = client.get(f"/api/appointments/{row.appointment_id}/notifications/")
    assert response.status_code == 200
    return {item["id"]: item for item in response.json()["results"]}


def test_a_patient_reads_a_plain_reason_for_a_dead_message(patient_client, dead_sms):
    seen = rows_seen_by(patient_client, dead_sms)[dead_sms.pk]

    assert seen["last_error"] == "This message could not be delivered to this address."
    assert seen["error_code"] == ""
    assert "Twilio" not in str(seen) and "+1415" not in str(seen)


def test_staff_read_the_providers_detail(staff_client, dead_sms):
    seen = rows_seen_by(staff_client, dead_sms)[dead_sms.pk]

    assert (seen["last_error"], seen["error_code"]) == (DETAIL, "21211")


def test_a_patient_reads_that_a_failed_message_will_be_tried_again(patient_client, dead_sms):
    from django.utils import timezone

    Notification.objects.filter(pk=dead_sms.pk).update(next_attempt_at=timezone.now())

    seen = rows_seen_by(patient_client, dead_sms)[dead_sms.pk]

    assert seen["last_error"] == "Not delivered yet; it will be tried again."
