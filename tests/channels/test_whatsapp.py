"""WhatsApp as Twilio delivers it since April 2025: a message the clinic starts goes by the
kind's approved Content Template (ContentSid and ContentVariables, no Body); free-form text goes
only inside the 24 hours after the patient's last WhatsApp message; outside it, with no
template, the row is never sent to Twilio and falls back to email."""

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from notifications.messages.rendering import local_date_and_time
from tests.conftest import settled, wait_for

PHONE = "+14155550142"


def whatsapp_booking(book, make_patient, **patient_fields):
    patient = make_patient(channels=["whatsapp"], phone=PHONE, name="Grace Hopper", **patient_fields)
    return book(patient, location="Room 4")


def confirmation(appointment, channel="whatsapp"):
    """The booking confirmation on this channel, once sent or failed (a fallback row appears
    only after the row it stands in for has failed)."""
    rows = appointment.notifications.filter(kind="booking_confirmation", channel=channel)
    wait_for(rows.exists)
    (row,) = settled(rows)
    return row


def test_kind_with_a_template_goes_by_content_sid_and_numbered_variables_without_body(
    celery_worker, settings, twilio, book, make_patient
):
    appointment = whatsapp_booking(book, make_patient)

    row = confirmation(appointment)

    assert row.status == "sent"
    (request,) = twilio.sent_to(f"whatsapp:{PHONE}")
    assert request.form["ContentSid"] == settings.TWILIO_CONTENT_SIDS["booking_confirmation"]
    assert "Body" not in request.form
    date, time = local_date_and_time(appointment.starts_at.isoformat(), "Europe/London", "en-us")
    assert json.loads(request.form["ContentVariables"]) == {
        "1": "Grace Hopper",
        "2": date,
        "3": time,
        "4": "Dr. Ada Lovelace",
        "5": "Room 4",
        "6": settings.CLINIC_NAME,
    }
    assert row.provider_message_id == twilio.accepted[0]["sid"]


def test_content_sid_twilio_does_not_know_is_refused_with_21655_and_falls_back_to_email(
    celery_worker, settings, twilio, book, make_patient
):
    settings.TWILIO_CONTENT_SIDS = {"booking_confirmation": "HX" + "0" * 32}
    appointment = whatsapp_booking(book, make_patient)

    row = confirmation(appointment)

    assert (row.status, row.error_code, row.next_attempt_at) == ("failed", "21655", None)
    assert twilio.accepted == []
    assert confirmation(appointment, "email").status == "sent"
    assert [m.to for m in mail.outbox] == [[appointment.patient.email]]


def test_free_form_text_goes_inside_the_patients_24_hour_session(celery_worker, settings, twilio, book, make_patient):
    settings.TWILIO_CONTENT_SIDS = {}
    twilio.whatsapp_sessions[f"whatsapp:{PHONE}"] = (timezone.now() - timedelta(hours=23)).timestamp()
    appointment = whatsapp_booking(book, make_patient, whatsapp_last_inbound_at=timezone.now() - timedelta(hours=23))

    row = confirmation(appointment)

    assert row.status == "sent"
    (request,) = twilio.sent_to(f"whatsapp:{PHONE}")
    assert "Dr. Ada Lovelace" in request.body and "ContentSid" not in request.form


def test_free_form_text_outside_the_session_is_not_sent_and_falls_back_to_email(
    celery_worker, settings, twilio, book, make_patient
):
    settings.TWILIO_CONTENT_SIDS = {"reminder": settings.TWILIO_CONTENT_SIDS["reminder"]}
    appointment = whatsapp_booking(book, make_patient, whatsapp_last_inbound_at=timezone.now() - timedelta(hours=25))

    row = confirmation(appointment)

    assert (row.status, row.error_code, row.next_attempt_at, row.attempts) == ("failed", "session_closed", None, 1)
    assert "no approved WhatsApp template for booking_confirmation" in row.last_error
    assert twilio.requests == []
    assert confirmation(appointment, "email").status == "sent"
    assert len(mail.outbox) == 1


def test_patient_who_never_wrote_on_whatsapp_has_no_session(celery_worker, settings, twilio, book, make_patient):
    settings.TWILIO_CONTENT_SIDS = {}
    appointment = whatsapp_booking(book, make_patient)

    assert confirmation(appointment).error_code == "session_closed"
    assert twilio.requests == []


@pytest.mark.parametrize(
    "content_sids, check_id",
    [({"remindr": "HX" + "a" * 32}, "notifications.E002"), ({"reminder": "MG" + "a" * 32}, "notifications.E003")],
    ids=["unknown-kind", "not-a-content-sid"],
)
def test_misconfigured_content_templates_stop_the_checks(settings, content_sids, check_id):
    settings.TWILIO_CONTENT_SIDS = content_sids

    with pytest.raises(SystemCheckError, match=check_id):
        call_command("check")
