"""POST /api/patients/: staff register patients; bad input is refused, naming the field, and
nothing is written."""

import pytest

from appointments.models import Patient

URL = "/api/patients/"


def valid(**overrides):
    body = {
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "phone": "+14155550123",
        "timezone": "America/New_York",
        "channels": ["email", "sms"],
        "password": "cobol-compiler-1959",
    }
    body.update(overrides)
    return body


@pytest.fixture
def rows(django_user_model):
    """What a refused request must leave unchanged: patients and sign-in accounts."""
    return lambda: (Patient.objects.count(), django_user_model.objects.count())


def test_staff_registers_a_patient(staff_client):
    response = staff_client.post(URL, valid(), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["id"] == Patient.objects.get(email="grace@example.com").pk
    assert body["phone"] == "+14155550123"
    assert body["timezone"] == "America/New_York"
    assert body["channels"] == ["email", "sms"]
    assert "password" not in body


def test_phone_is_optional(staff_client):
    body = valid(channels=["email"])
    del body["phone"]

    response = staff_client.post(URL, body, format="json")

    assert response.status_code == 201
    assert Patient.objects.get(pk=response.json()["id"]).phone == ""


def test_every_channel_may_be_chosen(staff_client):
    response = staff_client.post(URL, valid(channels=["email", "sms", "whatsapp", "in_app"]), format="json")

    assert response.status_code == 201
    assert response.json()["channels"] == ["email", "sms", "whatsapp", "in_app"]


INVALID = [
    ("email", "not-an-email"),
    ("email", "grace@"),
    ("phone", "4155550123"),
    ("phone", "+1 415 555 0123"),
    ("phone", "+0123456789"),
    ("phone", "+1415555012345678"),
    ("timezone", "Mars/Olympus_Mons"),
    ("timezone", "europe/london"),
    ("channels", ["email", "fax"]),
    ("channels", ["carrier_pigeon"]),
    ("channels", []),
    ("channels", "email"),
]


@pytest.mark.parametrize(("field", "value"), INVALID, ids=[f"{f}={v!r}" for f, v in INVALID])
def test_invalid_field_is_refused_naming_it_and_nothing_is_written(staff_client, rows, field, value):
    before = rows()

    response = staff_client.post(URL, valid(**{field: value}), format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert rows() == before


@pytest.mark.parametrize("field", ["name", "email", "channels"])
def test_missing_required_field_is_refused_naming_it(staff_client, rows, field):
    body = valid()
    del body[field]
    before = rows()

    response = staff_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert rows() == before


def test_weak_password_is_refused_and_nothing_is_written(staff_client, rows):
    before = rows()

    response = staff_client.post(URL, valid(password="password"), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["password"]
    assert rows() == before


def test_second_account_with_the_same_email_is_refused(staff_client, rows):
    assert staff_client.post(URL, valid(), format="json").status_code == 201
    before = rows()

    response = staff_client.post(URL, valid(email="GRACE@example.com", name="Someone Else"), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["email"]
    assert rows() == before


def test_repeated_channels_are_kept_once(staff_client):
    response = staff_client.post(URL, valid(channels=["sms", "email", "sms"]), format="json")

    assert response.status_code == 201
    assert response.json()["channels"] == ["sms", "email"]
