"""Idempotency-Key on POST /api/appointments/, .../reschedule/ and .../cancel/: a retry with the
same key and body replays the first answer without doing the work again; the same key for
another request is 422; keys are per user and expire; only successful answers are kept; two
racing requests with one key book once."""

import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tokens import issue_token
from appointments import idempotency, services
from appointments.models import Appointment, IdempotentRequest
from config.celery import app as celery_app
from notifications.models import Notification
from tests.conftest import in_role, token_client

# Bookings name providers and locations that staff keep.
pytestmark = pytest.mark.usefixtures("clinic")

URL = "/api/appointments/"


def in_days(days):
    return (timezone.now() + timedelta(days=days)).isoformat()


def booking(patient, **overrides):
    return {
        "patient": patient.pk,
        "provider": "Dr. Grace Hopper",
        "starts_at": in_days(7),
        "duration_minutes": 45,
        "location": "Room 2, Harbour Clinic",
        "reason": "Annual check-up",
        **overrides,
    }


def post(client, url, body, key):
    return client.post(url, body, format="json", headers={"Idempotency-Key": key})


def written():
    return Appointment.objects.count(), Notification.objects.count()


# Booking


def test_replay_returns_the_first_answer_and_books_once(staff_client, make_patient):
    body = booking(make_patient())

    first = post(staff_client, URL, body, "booking-1")
    after_first = written()
    second = post(staff_client, URL, body, "booking-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert after_first[0] == 1
    assert after_first[1] > 0  # the booking planned its notifications once...
    assert written() == after_first  # ...and the replay planned nothing more


def test_replay_ignores_the_order_of_the_body_fields(staff_client, make_patient):
    body = booking(make_patient())

    first = post(staff_client, URL, body, "k")
    second = post(staff_client, URL, dict(reversed(list(body.items()))), "k")

    assert second.status_code == 201
    assert second.json() == first.json()
    assert Appointment.objects.count() == 1


def test_requests_without_the_header_book_every_time(staff_client, make_patient):
    body = booking(make_patient())

    ids = {staff_client.post(URL, body, format="json").json()["id"] for _ in range(2)}

    assert len(ids) == 2
    assert not IdempotentRequest.objects.exists()


def test_same_key_with_another_body_is_422_naming_the_header(staff_client, make_patient):
    patient = make_patient()
    post(staff_client, URL, booking(patient), "k")
    before = written()

    response = post(staff_client, URL, booking(patient, reason="Something else"), "k")

    assert response.status_code == 422
    assert list(response.json()) == ["Idempotency-Key"]
    assert written() == before


def test_same_key_on_another_path_is_422_and_does_nothing(staff_client, make_patient):
    booked = post(staff_client, URL, booking(make_patient()), "k").json()
    before = written()

    response = post(staff_client, f"{URL}{booked['id']}/cancel/", {"reason": "Doctor unwell"}, "k")

    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()
    assert Appointment.objects.get(pk=booked["id"]).status == "scheduled"
    assert written() == before


def test_keys_are_per_user(staff_client, patient_client):
    body = booking(patient_client.patient)

    by_staff = post(staff_client, URL, body, "same-key")
    by_patient = post(patient_client, URL, body, "same-key")

    assert by_staff.status_code == by_patient.status_code == 201
    assert by_staff.json()["id"] != by_patient.json()["id"]
    assert Appointment.objects.count() == 2


def test_an_expired_key_is_treated_as_new(staff_client, make_patient):
    body = booking(make_patient())
    first = post(staff_client, URL, body, "k")
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))

    second = post(staff_client, URL, body, "k")

    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    assert not second.has_header("Idempotent-Replayed")
    assert Appointment.objects.count() == 2
    # The expired row made way for the new one.
    assert list(IdempotentRequest.objects.values_list("response_body__id", flat=True)) == [second.json()["id"]]


def test_a_key_younger_than_the_ttl_setting_still_replays(staff_client, make_patient, settings):
    settings.IDEMPOTENCY_KEY_TTL_SECONDS = 60
    body = booking(make_patient())
    first = post(staff_client, URL, body, "k")
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(seconds=30))
    assert post(staff_client, URL, body, "k").json() == first.json()

    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    assert post(staff_client, URL, body, "k").json()["id"] != first.json()["id"]


# Only successful answers are kept


def test_a_400_is_not_stored_and_the_corrected_request_may_reuse_the_key(staff_client, make_patient):
    patient = make_patient()

    refused = post(staff_client, URL, booking(patient, starts_at=in_days(-1)), "k")

    assert refused.status_code == 400
    assert list(refused.json()) == ["starts_at"]
    assert not IdempotentRequest.objects.exists()

    body = booking(patient)
    corrected = post(staff_client, URL, body, "k")
    assert corrected.status_code == 201
    replayed = post(staff_client, URL, body, "k")
    assert replayed.json() == corrected.json()
    assert Appointment.objects.count() == 1


def test_a_refused_booking_for_another_patient_is_not_stored(patient_client, make_patient):
    other = make_patient()

    refused = post(patient_client, URL, booking(other), "k")
    allowed = post(patient_client, URL, booking(patient_client.patient), "k")

    assert refused.status_code == 400
    assert allowed.status_code == 201


def test_a_409_is_not_stored(staff_client, book):
    appointment = book()
    services.cancel(appointment.pk, reason="Doctor unwell")

    response = post(staff_client, f"{URL}{appointment.pk}/reschedule/", {"starts_at": in_days(9)}, "k")

    assert response.status_code == 409
    assert not IdempotentRequest.objects.exists()


def test_a_key_longer_than_255_characters_is_400_naming_the_header(staff_client, make_patient):
    body = booking(make_patient())

    response = post(staff_client, URL, body, "k" * 256)

    assert response.status_code == 400
    assert list(response.json()) == ["Idempotency-Key"]
    assert written() == (0, 0)
    assert post(staff_client, URL, body, "k" * 255).status_code == 201


def test_an_empty_key_is_400_naming_the_header(staff_client, make_patient):
    response = post(staff_client, URL, booking(make_patient()), "")

    assert response.status_code == 400
    assert list(response.json()) == ["Idempotency-Key"]


# Reschedule and cancel


def test_reschedule_replay_moves_and_notifies_once(staff_client, book):
    appointment = book()
    url = f"{URL}{appointment.pk}/reschedule/"
    body = {"starts_at": in_days(10)}

    first = post(staff_client, url, body, "move-1")
    notices = appointment.notifications.filter(kind="reschedule").count()
    after_first = written()
    second = post(staff_client, url, body, "move-1")

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert notices > 0
    assert written() == after_first


def test_reschedule_replay_answers_the_first_answer_even_after_a_later_change(staff_client, book):
    appointment = book()
    url = f"{URL}{appointment.pk}/reschedule/"
    body = {"starts_at": in_days(10)}
    first = post(staff_client, url, body, "move-1")
    staff_client.post(url, {"starts_at": in_days(12)}, format="json")  # moved again, without a key

    replayed = post(staff_client, url, body, "move-1")

    assert replayed.json() == first.json()
    appointment.refresh_from_db()
    assert appointment.starts_at.isoformat() != first.json()["starts_at"]  # the replay moved nothing


def test_cancel_replay_cancels_and_notifies_once(staff_client, book):
    appointment = book()
    url = f"{URL}{appointment.pk}/cancel/"

    first = post(staff_client, url, {"reason": "Doctor unwell"}, "cancel-1")
    notices = appointment.notifications.filter(kind="cancellation").count()
    after_first = written()
    second = post(staff_client, url, {"reason": "Doctor unwell"}, "cancel-1")

    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert second.json() == first.json()
    assert notices > 0
    assert written() == after_first


def test_cancel_with_another_reason_and_the_same_key_is_422(staff_client, book):
    appointment = book()
    url = f"{URL}{appointment.pk}/cancel/"
    post(staff_client, url, {"reason": "Doctor unwell"}, "cancel-1")

    response = post(staff_client, url, {"reason": "Patient asked"}, "cancel-1")

    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()


# Racing duplicates


def test_racing_requests_with_the_same_key_book_once(transactional_db, staff_user, make_patient, monkeypatch):
    in_role(staff_user, "Front desk")
    patient = make_patient()
    body = booking(patient)
    token = issue_token(staff_user)
    real_book = services.book

    began = [threading.Event(), threading.Event()]

    def slow_book(**fields):
        # Hold the booking transaction open until both requests have begun, so the other one
        # arrives while this one is in flight (waited for, not assumed from a sleep).
        appointment = real_book(**fields)
        assert all(event.wait(timeout=10) for event in began), "the other request never began"
        return appointment

    monkeypatch.setattr(services, "book", slow_book)
    start = threading.Barrier(2)
    answers = [None, None]
    spans = [None, None]

    def send(i):
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            start.wait(timeout=10)
            started = time.monotonic()
            began[i].set()
            response = post(client, URL, body, "race")
            spans[i] = (started, time.monotonic())
            answers[i] = (response.status_code, response.json(), response.has_header("Idempotent-Replayed"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(answer is not None for answer in answers), answers
    assert max(begin for begin, _ in spans) < min(end for _, end in spans)  # they really overlapped
    assert [status for status, _, _ in answers] == [201, 201]
    assert answers[0][1] == answers[1][1]
    assert sorted(replayed for _, _, replayed in answers) == [False, True]
    assert Appointment.objects.count() == 1
    assert Notification.objects.filter(kind="booking_confirmation").count() == len(patient.channels)


# Expiry and the schema


def test_purge_deletes_expired_keys_only(staff_client, make_patient):
    for key in ("old", "young"):
        post(staff_client, URL, booking(make_patient()), key)
    IdempotentRequest.objects.filter(key="old").update(created_at=timezone.now() - timedelta(days=2))

    assert idempotency.purge_expired() == 1

    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["young"]


def test_purge_task_is_in_the_beat_schedule_and_registered():
    entries = [
        entry
        for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "appointments.purge_idempotency_keys"
    ]
    celery_app.loader.import_default_modules()

    assert len(entries) == 1
    assert "appointments.purge_idempotency_keys" in celery_app.tasks


@pytest.mark.parametrize(
    "path", ["/api/appointments/", "/api/appointments/{id}/reschedule/", "/api/appointments/{id}/cancel/"]
)
def test_schema_documents_the_header(client, db, path):
    schema = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}).json()

    parameters = schema["paths"][path]["post"].get("parameters", [])

    assert {"in": "header", "name": "Idempotency-Key"}.items() <= next(
        p for p in parameters if p["name"] == "Idempotency-Key"
    ).items()


def test_another_users_token_cannot_replay_an_answer(staff_client, django_user_model, make_patient):
    body = booking(make_patient())
    post(staff_client, URL, body, "k")
    other = django_user_model.objects.create_user("staff2", "s2@clinic.example", "x", is_staff=True)
    other_staff = token_client(in_role(other, "Front desk"))

    response = post(other_staff, URL, body, "k")

    assert response.status_code == 201
    assert not response.has_header("Idempotent-Replayed")
    assert Appointment.objects.count() == 2
