"""The in-app inbox, fed by a real worker: rows become sent, the patient lists them newest first
with an unread count, marks them read, and never reaches another patient's rows."""

from datetime import timedelta

from tests.conftest import settled


def in_app_patient(patient):
    patient.channels = ["in_app"]
    patient.save(update_fields=["channels"])
    return patient


def book_and_settle(book, patient, **fields):
    appointment = book(patient, **fields)
    (row,) = settled(appointment.notifications.filter(kind="booking_confirmation"))
    assert row.status == "sent"
    return row


def test_in_app_rows_are_sent_and_listed_newest_first_with_unread_count(celery_worker, book, patient_client):
    patient = in_app_patient(patient_client.patient)
    older = book_and_settle(book, patient, provider="Dr. Older", starts_in=timedelta(days=5))
    newer = book_and_settle(book, patient, provider="Dr. Newer", starts_in=timedelta(days=9))

    response = patient_client.get("/api/inbox/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["id"] for item in body["results"]] == [newer.pk, older.pk]
    assert body["unread"] == 2
    assert "Dr. Newer" in body["results"][0]["text"]
    assert body["results"][0]["kind"] == "booking_confirmation"
    assert body["results"][0]["read_at"] is None
    assert body["results"][0]["sent_at"] is not None


def test_marking_an_inbox_item_read_drops_the_unread_count(celery_worker, book, patient_client):
    patient = in_app_patient(patient_client.patient)
    first = book_and_settle(book, patient)
    book_and_settle(book, patient, starts_in=timedelta(days=8))

    response = patient_client.post(f"/api/inbox/{first.pk}/read/")

    assert response.status_code == 200, response.content
    assert response.json()["read_at"] is not None
    inbox = patient_client.get("/api/inbox/").json()
    assert inbox["unread"] == 1
    assert [item["read_at"] is not None for item in inbox["results"] if item["id"] == first.pk] == [True]
    # Reading again keeps the first read time.
    again = patient_client.post(f"/api/inbox/{first.pk}/read/")
    assert again.json()["read_at"] == response.json()["read_at"]
    assert patient_client.get("/api/inbox/").json()["unread"] == 1


def test_another_patients_inbox_row_is_404(celery_worker, book, make_patient, patient_client):
    in_app_patient(patient_client.patient)
    stranger_row = book_and_settle(book, make_patient(channels=["in_app"]))

    read = patient_client.post(f"/api/inbox/{stranger_row.pk}/read/")

    assert read.status_code == 404
    stranger_row.refresh_from_db()
    assert stranger_row.read_at is None
    assert patient_client.get("/api/inbox/").json()["results"] == []
