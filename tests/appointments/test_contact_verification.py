"""A patient's own change of email or phone takes effect when they confirm the code sent to the
new address; until then every message goes to the old one. Staff changes apply at once."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from appointments.models import ContactChange, Patient

# A new sign-in email needs the current password too (tests/test_sign_in_email_change.py).
NEW_EMAIL = {"email": "new-me@example.com", "current_password": "patient-pass-123"}


def patient_url(patient, action=""):
    return f"/api/patients/{patient.pk}/{action}"


def code_in(text):
    return re.search(r"\b(\d{6})\b", text).group(1)


@pytest.fixture
def patient(patient_client):
    return patient_client.patient


def test_a_new_email_gets_a_code_and_the_old_one_keeps_the_messages(patient_client, patient, book):
    old = patient.email

    response = patient_client.patch(patient_url(patient), NEW_EMAIL, format="json")

    assert response.status_code == 200
    assert response.json()["email"] == old
    assert response.json()["pending_verification"] == ["email"]
    [message] = [m for m in mail.outbox if m.to == ["new-me@example.com"]]
    assert code_in(message.body)
    assert Patient.objects.get(pk=patient.pk).email == old
    booked = book(patient=Patient.objects.get(pk=patient.pk))
    assert booked.notifications.get(channel="email", kind="booking_confirmation").recipient == old


def test_the_code_makes_the_new_email_the_patients_and_their_sign_in(patient_client, patient):
    patient_client.patch(patient_url(patient), NEW_EMAIL, format="json")
    code = code_in(mail.outbox[-1].body)

    response = patient_client.post(patient_url(patient, "verify/"), {"field": "email", "code": code}, format="json")

    assert response.status_code == 200
    assert response.json()["email"] == "new-me@example.com"
    assert response.json()["pending_verification"] == []
    login = APIClient().post(
        "/api/auth/token/", {"username": "new-me@example.com", "password": "patient-pass-123"}, format="json"
    )
    assert login.status_code == 200


def test_a_new_phone_gets_its_code_by_sms_at_that_number(patient_client, patient, twilio):
    response = patient_client.patch(patient_url(patient), {"phone": "+14155550199"}, format="json")

    assert response.status_code == 200
    [sms] = [m for m in twilio.accepted if m["to"] == "+14155550199"]
    code = code_in(sms["body"])
    verified = patient_client.post(patient_url(patient, "verify/"), {"field": "phone", "code": code}, format="json")
    assert verified.status_code == 200
    assert Patient.objects.get(pk=patient.pk).phone == "+14155550199"


def test_a_wrong_code_is_refused_naming_code_and_five_end_the_change(patient_client, patient):
    patient_client.patch(patient_url(patient), NEW_EMAIL, format="json")
    code = code_in(mail.outbox[-1].body)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    answers = [
        patient_client.post(patient_url(patient, "verify/"), {"field": "email", "code": wrong}, format="json")
        for _ in range(5)
    ]
    late = patient_client.post(patient_url(patient, "verify/"), {"field": "email", "code": code}, format="json")

    assert [(a.status_code, list(a.json())) for a in answers] == [(400, ["code"])] * 5
    assert late.status_code == 400
    assert Patient.objects.get(pk=patient.pk).email != "new-me@example.com"


def test_an_expired_code_is_refused(patient_client, patient):
    patient_client.patch(patient_url(patient), NEW_EMAIL, format="json")
    code = code_in(mail.outbox[-1].body)
    ContactChange.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = patient_client.post(patient_url(patient, "verify/"), {"field": "email", "code": code}, format="json")

    assert (response.status_code, list(response.json())) == (400, ["code"])
    assert Patient.objects.get(pk=patient.pk).email != "new-me@example.com"


def test_staff_change_a_patients_contact_at_once(staff_client, patient):
    response = staff_client.patch(patient_url(patient), {"email": "new-me@example.com"}, format="json")

    assert response.status_code == 200
    assert Patient.objects.get(pk=patient.pk).email == "new-me@example.com"
    assert not [m for m in mail.outbox if m.to == ["new-me@example.com"]]
