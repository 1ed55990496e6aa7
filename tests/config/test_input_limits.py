"""Hostile input answers 400 naming the field, never 500; and another patient's ids answer what
ids that do not exist answer."""

import pytest

from appointments.models import Appointment
from tests.conftest import booking

# Bookings name providers and locations that staff keep.
pytestmark = pytest.mark.usefixtures("clinic")

URL = "/api/appointments/"


@pytest.mark.parametrize("starts_at", ["9999-12-31T23:59:59-05:00", "9999-12-31T23:00:00-14:00"])
def test_a_time_past_year_9999_in_utc_is_refused_naming_starts_at(staff_client, make_patient, starts_at):
    response = staff_client.post(URL, booking(make_patient(), starts_at=starts_at), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["starts_at"]
    assert not Appointment.objects.exists()


def test_a_reschedule_past_year_9999_in_utc_is_refused_naming_starts_at(staff_client, book):
    appointment = book()

    response = staff_client.post(
        f"{URL}{appointment.pk}/reschedule/", {"starts_at": "9999-12-31T23:59:59-05:00"}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()) == ["starts_at"]


def test_json_nested_100000_deep_is_refused_with_a_json_body(staff_client, db):
    body = "[" * 100_000 + "]" * 100_000

    response = staff_client.post(URL, data=body, content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()


@pytest.mark.parametrize("phone", ["+1٤١٥٥٥٥٠١٠٠", "+1415５５５0100"])
def test_phone_number_takes_ascii_digits_only(staff_client, make_patient, phone):
    patient = make_patient()

    response = staff_client.patch(f"/api/patients/{patient.pk}/", {"phone": phone}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["phone"]


def test_booking_for_another_patient_answers_as_for_a_patient_that_does_not_exist(patient_client, make_patient):
    other = make_patient()

    someone_elses = patient_client.post(URL, booking(other), format="json")
    nobodys = patient_client.post(URL, booking(other, patient=other.pk + 1000), format="json")

    assert (someone_elses.status_code, someone_elses.json()) == (
        nobodys.status_code,
        nobodys.json() | {"patient": [f'Invalid pk "{other.pk}" - object does not exist.']},
    )
    assert someone_elses.status_code == 400
    assert not Appointment.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/patients/{id}/"),
        ("patch", "/api/patients/{id}/"),
    ],
)
def test_another_patients_id_answers_the_404_of_one_that_does_not_exist(patient_client, make_patient, method, path):
    other = make_patient()

    someone_elses = getattr(patient_client, method)(path.format(id=other.pk), {}, format="json")
    nobodys = getattr(patient_client, method)(path.format(id=other.pk + 1000), {}, format="json")

    assert someone_elses.status_code == nobodys.status_code == 404
    assert someone_elses.json() == nobodys.json()
