"""What is stored is what the database takes: NUL and lone surrogates (which PostgreSQL refuses
in text and JSON, and a Python string can hold) are dropped or replaced in every row the hot
paths write, so one such value cannot fail a statement that carries other patients' rows."""

from notifications.models import Notification
from notifications.outbox.raw_sql import insert_ignoring_conflicts, storable


def test_storable_drops_nul_and_replaces_lone_surrogates_anywhere_in_a_value():
    value = {"na\x00me": ["Ana\x00", "\ud800x", 3, None], "ok": "Zoë"}

    assert storable(value) == {"name": ["Ana", "\ufffdx", 3, None], "ok": "Zoë"}
    assert storable("plain") == "plain"


def test_a_planned_row_holding_a_nul_is_stored_without_it(db, book, make_patient):
    appointment = book(make_patient(channels=["email"]))
    planned = Notification.planned(
        appointment=appointment,
        patient=appointment.patient,
        kind="reminder",
        channel="email",
        scheduled_for=appointment.starts_at,
        recipient="ana\x00@example.com",
        context={"patient_name": "Ana\x00 \ud83d", "starts_at": appointment.starts_at.isoformat()},
    )

    (pk,) = insert_ignoring_conflicts([planned], returning=["id"])[0]

    row = Notification.objects.get(pk=pk)
    assert (row.recipient, row.context["patient_name"]) == ("ana@example.com", "Ana \ufffd")
