"""Sending a row happens once however many claimers race for it; staff list rows by status,
channel and kind, and put failed rows back in the queue."""

import threading

import pytest
from django.db import connection

from notifications.models import Notification
from notifications.outbox.delivery import send_notification

URL = "/api/notifications/"


def sms_confirmation(appointment):
    return appointment.notifications.get(kind="booking_confirmation", channel="sms")


# Claiming: one send per row


def test_sending_the_same_row_twice_sends_it_once(book, make_patient, twilio):
    row = sms_confirmation(book(patient=make_patient(phone="+14155550142")))

    outcomes = [send_notification(row.pk), send_notification(row.pk)]

    assert outcomes == ["sent", None]
    assert len(twilio.sent_to("+14155550142")) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)


def test_racing_threads_send_the_row_once(transactional_db, book, make_patient, twilio):
    row = sms_confirmation(book(patient=make_patient(phone="+14155550143")))
    racers = 4
    start = threading.Barrier(racers)
    outcomes = []

    def race():
        try:
            start.wait()
            outcomes.append(send_notification(row.pk))
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes, key=str) == [None] * (racers - 1) + ["sent"]
    assert len(twilio.sent_to("+14155550143")) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)


# Staff list, filtered


@pytest.fixture
def planned(book, make_patient):
    """Two appointments, each with email and SMS confirmations and three reminders (email two
    days before, SMS one day and two hours before); one SMS confirmation has been sent."""
    first = book(patient=make_patient())
    book(patient=make_patient())
    send_notification(sms_confirmation(first).pk)
    return first


def listed(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == len(body["results"])  # one page here
    return body["results"]


def test_staff_list_every_notification(staff_client, planned):
    rows = listed(staff_client)

    assert len(rows) == Notification.objects.count() == 10
    assert {row["id"] for row in rows} == set(Notification.objects.values_list("id", flat=True))


def test_staff_filter_by_status(staff_client, planned):
    sent = listed(staff_client, status="sent")
    pending = listed(staff_client, status="pending")

    assert [row["id"] for row in sent] == [sms_confirmation(planned).pk]
    assert len(pending) == 9
    assert {row["status"] for row in pending} == {"pending"}


def test_staff_filter_by_channel(staff_client, planned):
    rows = listed(staff_client, channel="email")

    assert len(rows) == 4
    assert {row["channel"] for row in rows} == {"email"}


def test_staff_filter_by_kind(staff_client, planned):
    rows = listed(staff_client, kind="reminder")

    assert len(rows) == 6
    assert {row["kind"] for row in rows} == {"reminder"}


def test_staff_filters_combine(staff_client, planned):
    rows = listed(staff_client, status="pending", channel="sms", kind="booking_confirmation")

    assert len(rows) == 1
    assert rows[0]["appointment"] != planned.pk


@pytest.mark.parametrize("field", ["status", "channel", "kind"])
def test_an_empty_filter_value_is_refused_naming_the_field(staff_client, planned, field):
    """The schema's enums have no empty value (schemathesis' ST201 found `?channel=&status=`
    answered 200): an empty filter is a client's mistake, not "no filter"."""
    response = staff_client.get(URL, {field: ""})

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_every_empty_filter_is_named(staff_client, planned):
    response = staff_client.get(URL, {"channel": "", "status": ""})

    assert response.status_code == 400
    assert sorted(response.json()) == ["channel", "status"]


def test_filter_matching_nothing_is_an_empty_list(staff_client, planned):
    assert listed(staff_client, status="failed") == []


@pytest.mark.parametrize(("field", "value"), [("status", "lost"), ("channel", "fax"), ("kind", "birthday")])
def test_invalid_filter_value_is_refused_naming_the_field(staff_client, planned, field, value):
    response = staff_client.get(URL, {field: value})

    assert response.status_code == 400
    assert list(response.json()) == [field]


# Retry


@pytest.fixture
def dead_sms(book, make_patient):
    """An SMS confirmation Twilio refused for good (+15005550001 is not a valid number)."""
    row = sms_confirmation(book(patient=make_patient(phone="+15005550001")))
    assert send_notification(row.pk) == "failed"
    row.refresh_from_db()
    assert row.is_dead
    return row


def test_staff_retry_puts_a_failed_row_back_to_pending(staff_client, dead_sms):
    response = staff_client.post(f"{URL}{dead_sms.pk}/retry/")

    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.json()["attempts"] == 0
    dead_sms.refresh_from_db()
    assert (dead_sms.status, dead_sms.attempts) == ("pending", 0)


def test_staff_retry_of_a_sent_row_is_a_conflict(staff_client, book):
    row = sms_confirmation(book())
    assert send_notification(row.pk) == "sent"

    response = staff_client.post(f"{URL}{row.pk}/retry/")

    assert response.status_code == 409
    assert "status" in response.json()
    row.refresh_from_db()
    assert row.status == "sent"


def test_staff_retry_of_a_pending_row_is_a_conflict(staff_client, book):
    row = sms_confirmation(book())

    response = staff_client.post(f"{URL}{row.pk}/retry/")

    assert response.status_code == 409
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)


def test_staff_retry_of_an_unknown_row_is_not_found(staff_client, db):
    response = staff_client.post(f"{URL}999999/retry/")

    assert response.status_code == 404
