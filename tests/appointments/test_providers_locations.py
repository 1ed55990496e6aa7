"""Providers and locations are records staff keep: a booking names them, so no text a patient
types goes out from the clinic's sender; and a patient books only a few appointments an hour."""

import pytest

from appointments.models import Appointment, Location, Provider
from notifications.models import Notification
from tests.conftest import booking

URL = "/api/appointments/"
SPAM = "your bank: call +1 900 555 0100 visit https://evil.example"


def written():
    return Appointment.objects.count(), Notification.objects.count()


@pytest.mark.parametrize("field", ["provider", "location"])
def test_a_name_staff_do_not_keep_is_refused_naming_the_field(patient_client, clinic, field):
    before = written()

    response = patient_client.post(URL, booking(patient_client.patient, **{field: SPAM}), format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert written() == before


def test_a_booking_names_the_records_whatever_the_case_and_keeps_their_names(patient_client, clinic):
    response = patient_client.post(
        URL, booking(patient_client.patient, provider="dr. ada lovelace", location=""), format="json"
    )

    assert response.status_code == 201
    assert (response.json()["provider"], response.json()["location"]) == ("Dr. Ada Lovelace", "")


def test_staff_keep_providers_and_locations(staff_client, db):
    provider = staff_client.post("/api/providers/", {"name": "Dr. Mary Somerville"}, format="json")
    location = staff_client.post(
        "/api/locations/", {"name": "Room 9", "address": "1 Harbour Road, Burntisland"}, format="json"
    )

    assert provider.status_code == location.status_code == 201
    assert Provider.objects.get(pk=provider.json()["id"]).name == "Dr. Mary Somerville"
    assert Location.objects.get(pk=location.json()["id"]).address == "1 Harbour Road, Burntisland"


def test_a_second_provider_of_the_same_name_is_refused_naming_name(staff_client, clinic):
    response = staff_client.post("/api/providers/", {"name": "DR. ADA LOVELACE"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["name"]


def test_patients_list_providers_and_locations_but_cannot_add_them(patient_client, clinic):
    listed = patient_client.get("/api/providers/")
    added = patient_client.post("/api/providers/", {"name": SPAM}, format="json")
    located = patient_client.post("/api/locations/", {"name": SPAM}, format="json")

    assert listed.status_code == 200
    assert "Dr. Ada Lovelace" in [p["name"] for p in listed.json()["results"]]
    assert (added.status_code, located.status_code) == (403, 403)
    assert not Provider.objects.filter(name=SPAM).exists()


def test_a_patient_books_at_most_five_appointments_an_hour(patient_client, clinic, settings):
    answers = [patient_client.post(URL, booking(patient_client.patient), format="json").status_code for _ in range(5)]

    refused = patient_client.post(URL, booking(patient_client.patient), format="json")

    assert answers == [201] * 5
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert Appointment.objects.count() == 5


def test_no_bookings_allowed_refuses_a_patients_booking_with_403(patient_client, clinic, settings):
    settings.BOOKINGS_PER_PATIENT_PER_HOUR = 0

    refused = patient_client.post(URL, booking(patient_client.patient), format="json")

    assert refused.status_code == 403, refused.content
    assert "clinic" in refused.json()["detail"]
    assert not Appointment.objects.exists()


def test_staff_book_for_a_patient_without_that_limit(staff_client, make_patient, clinic):
    patient = make_patient()

    answers = {staff_client.post(URL, booking(patient), format="json").status_code for _ in range(8)}

    assert answers == {201}
