"""A patient's email is their sign-in: changing it needs their current password as well as the
code sent to the new address, so a stolen token alone cannot take the account."""

import pytest
from django.core import mail

from appointments.models import ContactChange


@pytest.fixture
def patient(patient_client):
    return patient_client.patient


def change_email(client, patient, **extra):
    return client.patch(f"/api/patients/{patient.pk}/", {"email": "thief@example.com", **extra}, format="json")


@pytest.mark.parametrize("extra", [{}, {"current_password": ""}, {"current_password": "guessed-wrong-1"}])
def test_a_new_sign_in_email_without_the_current_password_is_refused_naming_it(patient_client, patient, extra):
    response = change_email(patient_client, patient, **extra)

    assert response.status_code == 400
    assert list(response.json()) == ["current_password"]
    assert not ContactChange.objects.exists()
    assert [m for m in mail.outbox if "thief@example.com" in m.to] == []


def test_with_the_current_password_the_code_goes_to_the_new_address(patient_client, patient):
    response = change_email(patient_client, patient, current_password="patient-pass-123")

    assert response.status_code == 200
    assert response.json()["pending_verification"] == ["email"]
    assert [m.to for m in mail.outbox] == [["thief@example.com"]]


def test_other_changes_need_no_password(patient_client, patient):
    response = patient_client.patch(f"/api/patients/{patient.pk}/", {"name": "New Name"}, format="json")

    assert response.status_code == 200


def test_staff_change_a_patients_email_without_it(staff_client, patient):
    response = change_email(staff_client, patient)

    assert (response.status_code, response.json()["email"]) == (200, "thief@example.com")
