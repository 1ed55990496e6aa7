"""A patient's own change of email or phone takes effect when they confirm the code sent to the
new address; until then every message goes to the old one. Staff changes apply at once."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from appointments.models import ContactChange, Patient

# A new sign-in email needs the current password too (tests/appointments/test_sign_in_email_change.py).
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


# The clinic's sender cannot be pumped (issue 28): codes are limited per patient and per
# destination, guesses count across re-requests, and text goes only to allowed countries.


def new_phone(n):
    return f"+1415555{n:04d}"


def test_a_patient_gets_three_codes_an_hour_then_429_in_json(patient_client, patient, twilio):
    answers = [patient_client.patch(patient_url(patient), {"phone": new_phone(n)}, format="json") for n in range(1, 5)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1]["Content-Type"].startswith("application/json")
    assert "detail" in answers[-1].json() and int(answers[-1]["Retry-After"]) > 0
    assert sorted(m["to"] for m in twilio.accepted) == [new_phone(n) for n in range(1, 4)]


def test_ten_codes_a_day_per_patient(patient_client, patient):
    from appointments.models import ContactCodeSent

    answers = []
    for n in range(1, 12):
        answers.append(
            patient_client.patch(
                patient_url(patient),
                {"email": f"me{n}@example.com", "current_password": "patient-pass-123"},
                format="json",
            )
        )
        # Each code an hour and a half older than the next: the hourly allowance never binds.
        ContactCodeSent.objects.update(sent_at=timezone.now() - timedelta(minutes=90))

    assert [a.status_code for a in answers] == [200] * 10 + [429]
    assert not [m for m in mail.outbox if m.to == ["me11@example.com"]]


def test_one_destination_gets_three_codes_an_hour_whoever_asks(make_patient, twilio):
    from tests.conftest import token_client

    victim = "+14155559999"
    answers = []
    for _ in range(4):
        patient = make_patient(password="patient-pass-123")
        answers.append(token_client(patient.user).patch(patient_url(patient), {"phone": victim}, format="json"))

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert len([m for m in twilio.accepted if m["to"] == victim]) == 3


def test_a_new_code_does_not_give_new_guesses(patient_client, patient):
    def guess_wrong(times):
        code = code_in(mail.outbox[-1].body)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        return [
            patient_client.post(patient_url(patient, "verify/"), {"field": "email", "code": wrong}, format="json")
            for _ in range(times)
        ]

    patient_client.patch(patient_url(patient), NEW_EMAIL, format="json")
    first = guess_wrong(3)
    patient_client.patch(patient_url(patient), NEW_EMAIL, format="json")
    second = guess_wrong(2)
    asked_again = patient_client.patch(patient_url(patient), NEW_EMAIL, format="json")

    assert [a.status_code for a in first + second] == [400] * 5
    assert ContactChange.objects.filter(patient=patient).count() == 0  # the fifth wrong guess ended it
    assert asked_again.status_code == 429, asked_again.content
    assert "5 wrong codes for this email in a day" in asked_again.json()["detail"]


def test_a_phone_outside_the_allowed_countries_is_400_naming_phone(patient_client, patient, staff_client, twilio):
    # The clinic's sender is +1 (tests/conftest.py): by default only +1 numbers get text.
    by_patient = patient_client.patch(patient_url(patient), {"phone": "+447700900123"}, format="json")
    by_staff = staff_client.patch(patient_url(patient), {"phone": "+447700900123"}, format="json")
    created = staff_client.post(
        "/api/patients/",
        {"name": "Far Away", "email": "far@example.com", "phone": "+882345678901", "channels": ["email"]},
        format="json",
    )

    assert [(a.status_code, list(a.json())) for a in (by_patient, by_staff, created)] == [(400, ["phone"])] * 3
    assert twilio.accepted == []


def test_the_allowed_countries_are_a_setting(patient_client, patient, settings, twilio):
    settings.SMS_ALLOWED_COUNTRIES = ["1", "44"]

    uk = patient_client.patch(patient_url(patient), {"phone": "+447700900123"}, format="json")
    spain = patient_client.patch(patient_url(patient), {"phone": "+34600000001"}, format="json")

    assert uk.status_code == 200, uk.content
    assert (spain.status_code, list(spain.json())) == (400, ["phone"])
    assert [m["to"] for m in twilio.accepted] == ["+447700900123"]


def test_any_country_when_no_sender_is_set(patient_client, patient, settings):
    settings.TWILIO_PHONE_NUMBER = ""
    settings.SMS_BACKEND = "locmem"

    response = patient_client.patch(patient_url(patient), {"phone": "+34600000001"}, format="json")

    assert response.status_code == 200, response.content


def test_a_code_twilio_refuses_to_send_is_400_naming_phone_and_nothing_waits(patient_client, patient, twilio):
    invalid = "+15005550001"  # Twilio's magic number: refused with 21211

    response = patient_client.patch(patient_url(patient), {"phone": invalid}, format="json")

    assert response.status_code == 400 and list(response.json()) == ["phone"]
    assert [m for m in twilio.accepted if m["to"] == invalid] == []
    assert not ContactChange.objects.filter(patient=patient).exists()
