"""A send thread touches no database: the hand-out reads what a send must check (the appointment,
the patient, whether an email service reported the address dead) in the worker's own thread, so
a batch of emails opens no database connection per send."""

import threading

from django.db.backends.signals import connection_created

from notifications.models import Notification, UndeliverableAddress
from notifications.outbox import delivery


def connections_opened_by_send_threads(run):
    opened = []

    def note(sender, connection, **kwargs):
        if threading.current_thread().name.startswith("send"):
            opened.append(threading.current_thread().name)

    connection_created.connect(note)
    try:
        run()
    finally:
        connection_created.disconnect(note)
    return opened


def test_a_batch_of_emails_opens_no_database_connection_in_its_send_threads(
    transactional_db, settings, book, make_patient
):
    settings.NOTIFICATIONS_SEND_THREADS = 2
    for n in range(3):
        book(make_patient(channels=["email"], email=f"threads{n}@example.com"))
    dead = Notification.objects.filter(kind="booking_confirmation").order_by("pk").first()
    UndeliverableAddress.objects.create(patient_id=dead.patient_id, address=dead.recipient, event="bounced")
    claimed = Notification.objects.filter(kind="booking_confirmation").claim()

    opened = connections_opened_by_send_threads(lambda: delivery.deliver(list(claimed)))

    assert opened == []
    outcomes = dict(Notification.objects.filter(kind="booking_confirmation").values_list("pk", "status"))
    assert outcomes.pop(dead.pk) == "skipped"
    assert set(outcomes.values()) == {"sent"}
