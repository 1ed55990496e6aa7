"""Patients' own moves and cancellations have an allowance (PATIENT_CHANGES_PER_DAY; staff have
none), moves made in quick succession reach the patient as one notice naming the latest time, and
an appointment's rows are listed a page at a time (issue 28, item 5)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications.models import Notification
from tasks.maintenance import sweep_due_notifications
from tests.conftest import settled


def at(moment):
    return moment.isoformat()


@pytest.fixture
def appointment(patient_client, book):
    return book(patient_client.patient, starts_in=timedelta(days=7))


def move(client, appointment, days):
    return client.post(
        f"/api/appointments/{appointment.pk}/reschedule/",
        {"starts_at": at(appointment.starts_at + timedelta(days=days))},
        format="json",
    )


def test_a_patient_makes_five_changes_a_day_then_429_in_json(patient_client, appointment, settings):
    assert settings.PATIENT_CHANGES_PER_DAY == 5
    moves = [move(patient_client, appointment, days) for days in range(1, 6)]
    refused_move = move(patient_client, appointment, 6)
    refused_cancel = patient_client.post(f"/api/appointments/{appointment.pk}/cancel/", {}, format="json")

    assert [m.status_code for m in moves] == [200] * 5
    assert refused_move.status_code == 429, refused_move.content
    assert "detail" in refused_move.json() and int(refused_move["Retry-After"]) > 0
    assert refused_cancel.status_code == 429
    original = appointment.starts_at
    appointment.refresh_from_db()
    assert (appointment.status, appointment.starts_at) == ("scheduled", original + timedelta(days=5))
    assert Notification.objects.filter(appointment=appointment, kind="reschedule").count() == 5 * 2


def test_moving_to_the_same_time_is_not_counted(patient_client, appointment, settings):
    settings.PATIENT_CHANGES_PER_DAY = 1
    first = move(patient_client, appointment, 1)
    appointment.refresh_from_db()

    again = move(patient_client, appointment, 0)  # the time it already has: no change

    assert (first.status_code, again.status_code) == (200, 200)


def test_no_changes_allowed_refuses_a_patients_move_with_403_and_changes_nothing(patient_client, appointment, settings):
    settings.PATIENT_CHANGES_PER_DAY = 0

    refused = move(patient_client, appointment, 1)

    assert refused.status_code == 403, refused.content
    assert "clinic" in refused.json()["detail"]
    original = appointment.starts_at
    appointment.refresh_from_db()
    assert appointment.starts_at == original


def test_staff_are_not_limited(staff_client, appointment, settings):
    settings.PATIENT_CHANGES_PER_DAY = 1

    answers = [move(staff_client, appointment, days) for days in range(1, 4)]

    assert [a.status_code for a in answers] == [200, 200, 200]


def test_three_quick_moves_reach_the_patient_once_with_the_last_time(
    celery_worker, patient_client, make_patient, book, twilio, settings
):
    settings.NOTIFICATIONS_RESCHEDULE_SETTLE_SECONDS = 60
    patient = patient_client.patient
    appointment = book(patient, starts_in=timedelta(days=7))
    settled(appointment.notifications.filter(kind="booking_confirmation"))
    mail.outbox.clear()
    twilio.reset()
    original = appointment.starts_at

    answers = [move(patient_client, appointment, days) for days in (1, 2, 3)]
    pending = appointment.notifications.filter(kind="reschedule", status="pending")
    assert [a.status_code for a in answers] == [200] * 3
    assert sorted(n.channel for n in pending) == ["email", "sms"]  # the last move's; the others withdrawn
    # The settle window passes and beat's sweep runs on the worker.
    pending.update(scheduled_for=timezone.now())
    sweep_due_notifications.delay().get(timeout=30)

    notices = settled(appointment.notifications.filter(kind="reschedule"))
    sent = [n for n in notices if n.status == "sent"]
    last = original + timedelta(days=3)
    assert sorted(n.channel for n in sent) == ["email", "sms"]
    assert {n.status for n in notices} == {"sent", "cancelled"}
    assert {n.context["starts_at"] for n in sent} == {last.isoformat()}
    # The patient last heard the original time: the notice names it as the one moved from.
    assert {n.context["previous_starts_at"] for n in sent} == {original.isoformat()}
    assert len([r for r in twilio.requests if "moved" in r.body]) == 1
    assert len([m for m in mail.outbox if "moved" in m.subject]) == 1


def test_an_appointments_notifications_are_paginated(staff_client, book):
    appointment = book(starts_in=timedelta(days=7))
    for days in range(1, 12):
        move(staff_client, appointment, days)
    rows = Notification.objects.filter(appointment=appointment).count()

    first = staff_client.get(f"/api/appointments/{appointment.pk}/notifications/")
    second = staff_client.get(first.json()["next"])

    assert rows > 50
    assert sorted(first.json()) == ["count", "next", "previous", "results"]
    assert (first.json()["count"], len(first.json()["results"])) == (rows, 50)
    assert len(second.json()["results"]) == rows - 50


def test_the_allowances_records_go_once_past_their_windows(patient_client, appointment):
    from appointments.models import ContactCodeSent, PatientChange
    from tasks.idempotency import purge_idempotency_keys

    move(patient_client, appointment, 1)
    patient_client.patch(f"/api/patients/{appointment.patient_id}/", {"email": "new@example.com"}, format="json")
    move(patient_client, appointment, 2)
    old = timezone.now() - timedelta(days=2, seconds=1)
    PatientChange.objects.filter(pk=PatientChange.objects.order_by("at").first().pk).update(at=old)
    ContactCodeSent.objects.update(sent_at=old)

    purge_idempotency_keys()

    assert PatientChange.objects.count() == 1
    assert not ContactCodeSent.objects.exists()


def test_no_list_the_api_answers_is_unpaginated(client, db):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    def answer(operation):
        return (
            operation.get("responses", {})
            .get("200", {})
            .get("content", {})
            .get("application/json", {})
            .get("schema", {})
        )

    bare_lists = [
        f"GET {path}"
        for path, operations in schema["paths"].items()
        if answer(operations.get("get", {})).get("type") == "array"
    ]
    assert bare_lists == []
