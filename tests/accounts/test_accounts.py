"""Sign-in accounts: one per email whatever its case, and no patient can take another's."""

import pytest
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

TOKEN_URL = "/api/auth/token/"


def sign_in(username, password):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")


@pytest.fixture
def victim(make_patient):
    return make_patient(email="victim@example.com", password="victim-pass-123")


@pytest.mark.parametrize("taken", ["victim@example.com", "Victim@Example.com"])
def test_patient_cannot_change_their_email_to_another_accounts(patient_client, victim, taken):
    # With the patient's own password (a new sign-in email needs it), the email is still refused.
    body = {"email": taken, "current_password": "patient-pass-123"}
    response = patient_client.patch(f"/api/patients/{patient_client.patient.pk}/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["email"]
    patient_client.patient.refresh_from_db()
    assert patient_client.patient.email != taken
    assert sign_in("victim@example.com", "victim-pass-123").status_code == 200


def test_patient_cannot_take_a_staff_members_email_username(patient_client, django_user_model):
    django_user_model.objects.create_user("Boss@Clinic.example", "boss@clinic.example", "boss-pass-123", is_staff=True)

    body = {"email": "boss@clinic.example", "current_password": "patient-pass-123"}
    response = patient_client.patch(f"/api/patients/{patient_client.patient.pk}/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["email"]
    assert sign_in("boss@clinic.example", "boss-pass-123").status_code == 200


def test_staff_cannot_give_a_patient_another_accounts_email(staff_client, make_patient, victim):
    other = make_patient(password="other-pass-123")

    response = staff_client.patch(f"/api/patients/{other.pk}/", {"email": "VICTIM@example.com"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["email"]


def test_patient_changes_their_email_to_a_free_one_and_signs_in_with_it(staff_client, patient_client):
    response = staff_client.patch(
        f"/api/patients/{patient_client.patient.pk}/", {"email": "new-address@example.com"}, format="json"
    )

    assert response.status_code == 200
    assert sign_in("New-Address@example.com", "patient-pass-123").status_code == 200


def test_database_refuses_two_usernames_differing_only_in_case(django_user_model, db):
    django_user_model.objects.create_user("someone@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        django_user_model.objects.create_user("SomeOne@Example.com")
