"""POST /api/appointments/ and an appointment's notifications: who may book, what is refused,
what a booking sends, and that a booking survives a broker that is down or hangs."""

import logging
import socket
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from appointments.models import Appointment
from notifications.models import Notification
from notifications.outbox import dispatch
from tests.broker import broker_at
from tests.conftest import queued_ids, settled

# Bookings name providers and locations that staff keep.
pytestmark = pytest.mark.usefixtures("clinic")

URL = "/api/appointments/"
CONTRACT_FIELDS = {
    "id",
    "channel",
    "kind",
    "status",
    "scheduled_for",
    "attempts",
    "last_error",
    "provider_message_id",
    "delivery_status",
    "sent_at",
}


def in_days(days):
    return (timezone.now() + timedelta(days=days)).isoformat()


def booking(for_patient, **overrides):
    body = {
        "patient": for_patient.pk,
        "provider": "Dr. Grace Hopper",
        "starts_at": in_days(7),
        "duration_minutes": 45,
        "location": "Room 2, Harbour Clinic",
        "reason": "Annual check-up",
    }
    body.update(overrides)
    return body


def written():
    """What a refused booking must leave unchanged."""
    return Appointment.objects.count(), Notification.objects.count()


# Who may book and see what


def test_staff_books_an_appointment(staff_client, make_patient):
    patient = make_patient()

    response = staff_client.post(URL, booking(patient), format="json")

    assert response.status_code == 201
    body = response.json()
    appointment = Appointment.objects.get(pk=body["id"])
    assert body["status"] == "scheduled"
    assert appointment.patient == patient
    assert appointment.provider == "Dr. Grace Hopper"
    assert appointment.duration_minutes == 45
    assert appointment.notifications.filter(kind="booking_confirmation").count() == 2


def test_patient_books_for_themselves(patient_client):
    response = patient_client.post(URL, booking(patient_client.patient), format="json")

    assert response.status_code == 201
    assert Appointment.objects.get(pk=response.json()["id"]).patient == patient_client.patient


def test_patient_cannot_book_for_another_patient(patient_client, make_patient):
    other = make_patient()
    before = written()

    response = patient_client.post(URL, booking(other), format="json")

    # The same answer as for an id that does not exist (tests/config/test_input_limits.py).
    assert response.status_code == 400
    assert list(response.json()) == ["patient"]
    assert written() == before


@pytest.mark.parametrize(
    "url", ["/api/appointments/{id}/", "/api/appointments/{id}/notifications/"], ids=["detail", "notifications"]
)
def test_another_patients_appointment_is_not_found(patient_client, book, url):
    someone_elses = book()

    response = patient_client.get(url.format(id=someone_elses.pk))

    assert response.status_code == 404


@pytest.mark.parametrize(
    "url", ["/api/appointments/{id}/", "/api/appointments/{id}/notifications/"], ids=["detail", "notifications"]
)
def test_patient_sees_their_own_appointment(patient_client, book, url):
    own = book(patient=patient_client.patient)

    response = patient_client.get(url.format(id=own.pk))

    assert response.status_code == 200


def test_patient_lists_only_their_own_appointments(patient_client, book):
    own = book(patient=patient_client.patient)
    book()

    response = patient_client.get(URL)

    assert response.status_code == 200
    assert [a["id"] for a in response.json()["results"]] == [own.pk]


# Validation: refused, naming the field, nothing written

INVALID = [
    ("starts_at", "naive", lambda: (timezone.now() + timedelta(days=7)).replace(tzinfo=None).isoformat()),
    ("starts_at", "in the past", lambda: in_days(-1)),
    ("starts_at", "not ISO 8601", lambda: "next Tuesday at nine"),
    ("starts_at", "impossible date", lambda: "2030-02-30T09:00:00+00:00"),
    ("starts_at", "impossible offset", lambda: "2030-05-01T09:00:00+25:00"),
    ("starts_at", "a number", lambda: 1893456000),
    ("duration_minutes", "zero", lambda: 0),
    ("duration_minutes", "negative", lambda: -30),
]


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, _, v in INVALID], ids=[f"{f} {d}" for f, d, _ in INVALID])
def test_invalid_booking_is_refused_naming_the_field_and_nothing_is_written(staff_client, make_patient, field, value):
    patient = make_patient()
    before = written()

    response = staff_client.post(URL, booking(patient, **{field: value()}), format="json")

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert written() == before


def test_unknown_patient_is_refused_naming_patient(staff_client, make_patient):
    patient = make_patient()
    before = written()

    response = staff_client.post(URL, booking(patient, patient=patient.pk + 1000), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["patient"]
    assert written() == before


def test_malformed_json_is_refused_with_a_json_body(staff_client, db):
    before = written()

    response = staff_client.post(URL, data=b'{"patient": ', content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
    assert written() == before


# Booking through the API with a real worker


@pytest.fixture
def booked(celery_worker, staff_client, make_patient):
    """An appointment booked through the API, its confirmations settled by the worker."""
    patient = make_patient(channels=("email", "sms"), phone="+14155550177", email="alan@example.com")
    response = staff_client.post(URL, booking(patient), format="json")
    assert response.status_code == 201
    settled(Notification.objects.filter(appointment_id=response.json()["id"], kind="booking_confirmation"))
    return response.json()


def test_booking_answers_201_with_id_and_status(booked):
    assert booked["status"] == "scheduled"
    assert Appointment.objects.filter(pk=booked["id"]).exists()


def test_appointment_notifications_list_contract_fields_and_sent_confirmations(booked, staff_client):
    response = staff_client.get(f"/api/appointments/{booked['id']}/notifications/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert all(CONTRACT_FIELDS <= set(row) for row in rows)
    confirmations = {row["channel"]: row for row in rows if row["kind"] == "booking_confirmation"}
    assert set(confirmations) == {"email", "sms"}
    for row in confirmations.values():
        assert row["status"] == "sent"
        assert row["attempts"] == 1
        assert row["sent_at"] is not None
        assert row["provider_message_id"]
        assert row["last_error"] == ""
    reminders = [row for row in rows if row["kind"] == "reminder"]
    assert sorted(row["channel"] for row in reminders) == ["email", "sms", "sms"]
    assert all(row["status"] == "pending" for row in reminders)


def test_booking_confirmation_email_is_sent_with_an_html_alternative(booked):
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["alan@example.com"]
    assert "Dr. Grace Hopper" in email.body
    # The HTML part, then the calendar invitation (tests/messages/test_invitations.py checks its life).
    assert [mimetype for _, mimetype in email.alternatives] == ["text/html", "text/calendar; method=REQUEST"]
    assert "Dr. Grace Hopper" in email.alternatives[0][0]


def test_booking_confirmation_sms_goes_through_twilio(booked, twilio):
    assert [r.to for r in twilio.requests] == ["+14155550177"]
    sms = twilio.requests[0]
    assert "Dr. Grace Hopper" in sms.body
    assert sms.form["From"] == "+15005550006"
    row = Notification.objects.get(appointment_id=booked["id"], kind="booking_confirmation", channel="sms")
    assert row.provider_message_id.startswith("SM")


# A broker that is down or hangs must not hold up or fail a booking


class SilentServer:
    """A TCP server on loopback that accepts connections and never answers."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._accepted = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    @property
    def connections(self):
        return len(self._accepted)

    def _accept(self):
        while not self._stopping.is_set():
            try:
                self._accepted.append(self._listener.accept()[0])
            except TimeoutError:
                continue

    def stop(self):
        self._stopping.set()
        self._thread.join()
        for connection in self._accepted:
            connection.close()
        self._listener.close()


@pytest.fixture
def silent_server():
    server = SilentServer()
    yield server
    server.stop()


def test_booking_does_not_wait_on_a_broker_that_refuses_connections(
    transactional_db, staff_client, make_patient, caplog, broker_client_sleeps
):
    """Causal, not timed: the publish was tried, failed, and never slept in a broker client's
    retry loop (kombu's waits 2 s and more); the rows wait for the sweep."""
    patient = make_patient()

    with broker_at("redis://127.0.0.1:1/0"), caplog.at_level(logging.WARNING, logger="notifications.outbox.dispatch"):
        response = staff_client.post(URL, booking(patient), format="json")

    assert response.status_code == 201
    assert "broker unavailable" in caplog.text  # the publish really was attempted and failed
    assert broker_client_sleeps == {"kombu": [], "redis": []}
    rows = Notification.objects.filter(appointment_id=response.json()["id"], kind="booking_confirmation")
    assert sorted(rows.values_list("status", flat=True)) == ["pending", "pending"]


def test_booking_waits_on_a_hanging_broker_for_one_socket_timeout_only(
    transactional_db, staff_client, make_patient, silent_server, caplog, broker_client_sleeps
):
    """Causal, not timed: the publish reached the hanging broker once, gave up on the socket's
    timeout (settings.CELERY_BROKER_TRANSPORT_OPTIONS), and never retried."""
    patient = make_patient()

    with broker_at(silent_server.url), caplog.at_level(logging.WARNING, logger="notifications.outbox.dispatch"):
        response = staff_client.post(URL, booking(patient), format="json")

    assert response.status_code == 201
    assert silent_server.connections == 1  # reached the hanging broker, and did not try again
    assert "broker unavailable" in caplog.text and "imeout" in caplog.text
    assert broker_client_sleeps == {"kombu": [], "redis": []}
    rows = Notification.objects.filter(appointment_id=response.json()["id"], kind="booking_confirmation")
    assert sorted(rows.values_list("status", flat=True)) == ["pending", "pending"]


# Publishing keeps its broker connection between bookings, and gets over one the broker dropped;
# on a broker of the test's own, so only this test's connections are counted and dropped.


def test_publishes_share_one_broker_connection(private_broker):
    dispatch.enqueue([1])  # the first publish of this process may connect
    connections_before = private_broker.info("stats")["total_connections_received"]

    for ids in ([2], [3], [4]):
        dispatch.enqueue(ids)

    assert private_broker.info("stats")["total_connections_received"] == connections_before
    assert private_broker.llen("celery") == 4


def test_a_publish_after_the_broker_dropped_the_connection_reaches_it(private_broker, caplog):
    dispatch.enqueue([1])
    private_broker.client_kill_filter(_type="normal", skipme=True)  # the publisher's connection

    with caplog.at_level(logging.WARNING, logger="notifications.outbox.dispatch"):
        dispatch.enqueue([2])  # may fail and be left to the sweep, or reconnect at once
        dispatch.enqueue([3])

    queued = queued_ids(private_broker)
    assert "([3],)" in queued
    assert ("([2],)" in queued) != ("broker unavailable" in caplog.text)  # sent, or logged as not
