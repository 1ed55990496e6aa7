"""POST /api/appointments/{id}/confirm/: staff or the patient set confirmed_at, once."""

from datetime import timedelta

from appointments import services


def confirm(client, appointment):
    return client.post(f"/api/appointments/{appointment.pk}/confirm/")


def test_patient_confirms_their_appointment(patient_client, book):
    appointment = book(patient_client.patient)

    response = confirm(patient_client, appointment)

    assert response.status_code == 200
    appointment.refresh_from_db()
    assert response.json()["confirmed_at"] is not None and appointment.confirmed_at is not None


def test_staff_confirm_for_the_patient_and_again_keeps_the_first_time(staff_client, book):
    appointment = book()

    first = confirm(staff_client, appointment).json()["confirmed_at"]
    again = confirm(staff_client, appointment)

    assert again.status_code == 200 and again.json()["confirmed_at"] == first


def test_another_patient_gets_404(patient_client, book, make_patient):
    appointment = book(make_patient())

    response = confirm(patient_client, appointment)

    assert response.status_code == 404
    appointment.refresh_from_db()
    assert appointment.confirmed_at is None


def test_cancelled_appointment_cannot_be_confirmed(staff_client, book):
    appointment = book()
    services.cancel(appointment.pk)

    response = confirm(staff_client, appointment)

    assert response.status_code == 409
    assert "status" in response.json()


def test_confirmed_at_is_read_only_in_the_api(staff_client, book):
    appointment = book(starts_in=timedelta(days=2))

    response = staff_client.patch(
        f"/api/appointments/{appointment.pk}/", {"confirmed_at": "2030-01-01T00:00:00Z"}, format="json"
    )

    appointment.refresh_from_db()
    assert response.status_code in (200, 405) and appointment.confirmed_at is None


def test_anonymous_cannot_confirm(client, book):
    assert confirm(client, book()).status_code == 401
