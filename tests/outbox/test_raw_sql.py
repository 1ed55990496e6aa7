"""The claim's read-back builds its rows, appointments and patients from one raw joined SELECT
(notifications/outbox/raw_sql.py): they must be the instances the ORM would build, field for
field, for every field type of the three models, on SQLite and on PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification


def field_values(instance):
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.fixture
def claimed(make_patient, book):
    patient = make_patient(channels=["email", "sms"], phone="+14155550123", name="Zoë O’Neil ✓")
    patient.opted_out = ["whatsapp"]
    patient.whatsapp_last_inbound_at = timezone.now() - timedelta(hours=3, microseconds=7)
    patient.save()
    appointment = book(patient)
    now = timezone.now()
    # A row with every optional field set: JSON context, datetimes with microseconds, UUIDs, text.
    for minutes, row in enumerate(Notification.objects.filter(appointment=appointment), start=1):
        Notification.objects.filter(pk=row.pk).update(
            scheduled_for=now - timedelta(minutes=minutes, microseconds=minutes),
            status="pending",
            last_error="Zoë’s “error” \\ with quotes ' and a backslash",
            next_attempt_at=None,
        )
    rows = Notification.objects.filter(appointment=appointment).claim(now=now, include_failed=False)
    assert rows, "the claim found nothing to compare"
    return rows


def test_read_back_rows_equal_the_orms_rows_field_for_field(claimed):
    orm = Notification.objects.select_related("appointment__patient").in_bulk([row.pk for row in claimed])
    for row in claimed:
        assert field_values(row) == field_values(orm[row.pk])
        assert type(row.context) is dict and row.context == orm[row.pk].context


def test_read_back_appointments_and_patients_equal_the_orms(claimed):
    orm = Notification.objects.select_related("appointment__patient").in_bulk([row.pk for row in claimed])
    for row in claimed:
        assert field_values(row.appointment) == field_values(orm[row.pk].appointment)
        assert field_values(row.appointment.patient) == field_values(orm[row.pk].appointment.patient)
        assert row.appointment.patient.channels == ["email", "sms"]


def test_read_back_instances_are_saved_instances_of_their_database(claimed):
    for row in claimed:
        assert not row._state.adding and row._state.db == Notification.objects.db
        assert not row.appointment._state.adding and not row.appointment.patient._state.adding
