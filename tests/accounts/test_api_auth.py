"""Who may call what: tokens, anonymous callers, patients versus staff."""

import pytest
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.test import APIClient

TOKEN_URL = "/api/auth/token/"


@pytest.fixture
def anonymous():
    return APIClient()


def test_token_is_issued_for_valid_credentials(anonymous, staff_user):
    response = anonymous.post(TOKEN_URL, {"username": "staff", "password": "staff-pass-123"}, format="json")

    assert response.status_code == 200
    assert set(response.json()) == {"token", "expiry"}
    # knox keeps the key's first characters and its digest, never the key itself.
    assert AuthToken.objects.get(user=staff_user).token_key == response.json()["token"][: CONSTANTS.TOKEN_KEY_LENGTH]


def test_token_is_refused_for_a_wrong_password(anonymous, staff_user):
    response = anonymous.post(TOKEN_URL, {"username": "staff", "password": "not-the-password"}, format="json")

    assert response.status_code == 400
    assert "token" not in response.json()
    assert not AuthToken.objects.filter(user=staff_user).exists()


def test_token_is_refused_for_an_unknown_user(anonymous, db):
    response = anonymous.post(TOKEN_URL, {"username": "nobody", "password": "whatever-123"}, format="json")

    assert response.status_code == 400
    assert "token" not in response.json()


def test_token_request_without_a_password_names_the_field(anonymous, db):
    response = anonymous.post(TOKEN_URL, {"username": "staff"}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()


def test_patient_registered_with_a_password_signs_in_with_their_email(staff_client, anonymous, settings):
    settings.SMS_ALLOWED_COUNTRIES = ["1", "44"]  # a clinic that texts the UK too
    registered = staff_client.post(
        "/api/patients/",
        {
            "name": "Mary Shelley",
            "email": "mary@example.com",
            "phone": "+447700900123",
            "timezone": "Europe/London",
            "channels": ["email", "sms"],
            "password": "frankenstein-1818",
        },
        format="json",
    )
    assert registered.status_code == 201
    assert registered.json()["can_sign_in"] is True

    response = anonymous.post(
        TOKEN_URL, {"username": "mary@example.com", "password": "frankenstein-1818"}, format="json"
    )

    assert response.status_code == 200
    patient_client = APIClient()
    patient_client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    own = patient_client.get(f"/api/patients/{registered.json()['id']}/")
    assert own.status_code == 200
    assert own.json()["email"] == "mary@example.com"


def test_patient_registered_without_a_password_cannot_sign_in(staff_client, anonymous):
    registered = staff_client.post(
        "/api/patients/",
        {"name": "Ada", "email": "ada@example.com", "timezone": "UTC", "channels": ["email"]},
        format="json",
    )
    assert registered.status_code == 201
    assert registered.json()["can_sign_in"] is False

    response = anonymous.post(TOKEN_URL, {"username": "ada@example.com", "password": "any-guess-123"}, format="json")

    assert response.status_code == 400


@pytest.fixture
def existing(book):
    """An appointment with its planned rows, so that every URL below names a real object."""
    appointment = book()
    return {"appointment": appointment.pk, "notification": appointment.notifications.first().pk}


ANONYMOUS_REQUESTS = [
    ("get", "/api/patients/"),
    ("post", "/api/patients/"),
    ("get", "/api/appointments/"),
    ("post", "/api/appointments/"),
    ("get", "/api/appointments/{appointment}/"),
    ("post", "/api/appointments/{appointment}/reschedule/"),
    ("post", "/api/appointments/{appointment}/cancel/"),
    ("get", "/api/appointments/{appointment}/notifications/"),
    ("get", "/api/notifications/"),
    ("get", "/api/notifications/{notification}/"),
    ("post", "/api/notifications/{notification}/retry/"),
    ("get", "/api/inbox/"),
    ("post", "/api/inbox/{notification}/read/"),
]


@pytest.mark.parametrize(("method", "url"), ANONYMOUS_REQUESTS, ids=[f"{m} {u}" for m, u in ANONYMOUS_REQUESTS])
def test_anonymous_caller_gets_401(anonymous, existing, method, url):
    response = getattr(anonymous, method)(url.format(**existing), {}, format="json")

    assert response.status_code == 401
    assert "detail" in response.json()


def test_patient_cannot_register_patients(patient_client, django_user_model):
    from appointments.models import Patient

    before = (Patient.objects.count(), django_user_model.objects.count())
    response = patient_client.post(
        "/api/patients/",
        {"name": "Intruder", "email": "intruder@example.com", "timezone": "UTC", "channels": ["email"]},
        format="json",
    )

    assert response.status_code == 403
    assert (Patient.objects.count(), django_user_model.objects.count()) == before


def test_patient_cannot_list_all_notifications(patient_client, book):
    book(patient=patient_client.patient)

    response = patient_client.get("/api/notifications/")

    assert response.status_code == 403


def test_patient_cannot_retry_a_notification(patient_client, book):
    notification = book(patient=patient_client.patient).notifications.first()

    response = patient_client.post(f"/api/notifications/{notification.pk}/retry/")

    assert response.status_code == 403


def test_patient_signs_in_with_their_email_in_any_case(make_patient):
    make_patient(email="Grace@Example.com", password="patient-pass-123")

    response = APIClient().post(
        "/api/auth/token/", {"username": "grace@example.com", "password": "patient-pass-123"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["token"]
