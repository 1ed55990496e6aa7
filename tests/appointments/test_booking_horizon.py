"""A booking or a move is at most BOOKING_MAX_DAYS_AHEAD days ahead in the patient's own zone, so
no date computed from it (quiet hours, reminders, the calendar invitation) overflows later."""

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from appointments.models import Appointment
from notifications.models import Notification
from tests.conftest import booking

KIRITIMATI = "Pacific/Kiritimati"  # UTC+14: 9999-12-31T09:00Z is already the year 10000 there


@pytest.fixture(autouse=True)
def quiet_nights(settings):
    settings.NOTIFICATIONS_QUIET_HOURS = {"sms": (time(21), time(8))}


def written():
    return Appointment.objects.count(), Notification.objects.count()


@pytest.mark.parametrize("starts_at", ["9999-12-31T09:00:00Z", "9999-12-31T20:00:00Z", "2200-01-01T09:00:00Z"])
def test_a_booking_past_the_horizon_is_refused_naming_starts_at(staff_client, make_patient, clinic, starts_at):
    patient = make_patient(timezone=KIRITIMATI)
    before = written()

    response = staff_client.post("/api/appointments/", booking(patient, starts_at=starts_at), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["starts_at"]
    assert written() == before


def days_ahead_in(zone, days, at=time(9)):
    """`at` o'clock in `zone` on the day `days` after today there, as the API takes it."""
    day = timezone.now().astimezone(ZoneInfo(zone)).date() + timedelta(days=days)
    return timezone.make_aware(timezone.datetime.combine(day, at), ZoneInfo(zone)).isoformat()


def test_the_last_day_is_counted_in_the_patients_zone(staff_client, make_patient, clinic, settings):
    settings.BOOKING_MAX_DAYS_AHEAD = 30
    patient = make_patient(timezone=KIRITIMATI)

    last = staff_client.post(
        "/api/appointments/", booking(patient, starts_at=days_ahead_in(KIRITIMATI, 30)), format="json"
    )
    after = staff_client.post(
        "/api/appointments/", booking(patient, starts_at=days_ahead_in(KIRITIMATI, 31, time(0, 30))), format="json"
    )

    assert last.status_code == 201, last.content
    assert (after.status_code, list(after.json())) == (400, ["starts_at"])


def test_a_move_past_the_horizon_is_refused_naming_starts_at(staff_client, make_patient, book):
    appointment = book(patient=make_patient(timezone=KIRITIMATI))
    url = f"/api/appointments/{appointment.pk}/reschedule/"

    response = staff_client.post(url, {"starts_at": "9999-12-31T09:00:00Z"}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["starts_at"]
    assert Appointment.objects.get(pk=appointment.pk).starts_at == appointment.starts_at


def test_the_refusal_says_how_far_ahead_a_booking_may_be(staff_client, make_patient, clinic):
    patient = make_patient(timezone=KIRITIMATI)

    response = staff_client.post("/api/appointments/", booking(patient, starts_at="9999-12-31T09:00Z"), format="json")

    assert response.json() == {"starts_at": [response.json()["starts_at"][0]]}
    assert "730 days ahead" in response.json()["starts_at"][0]


def test_a_booking_past_the_horizon_is_refused_in_the_admin_too(admin_client, make_patient, clinic):
    patient = make_patient(timezone=KIRITIMATI)
    form = {"patient": patient.pk, "provider": "Dr. Ada Lovelace", "starts_at_0": "9999-12-31", "starts_at_1": "09:00"}

    response = admin_client.post("/admin/appointments/appointment/add/", form | {"duration_minutes": 30})

    assert response.status_code == 200  # the form again
    assert "starts_at" in response.context["adminform"].form.errors
    assert not Appointment.objects.exists()
