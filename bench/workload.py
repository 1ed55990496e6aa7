"""What the benchmark writes to the database: a staff user, patients and appointments, due
rows for the sweep, and rows by the million for the claim measurement."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from accounts.tokens import issue_token
from appointments.models import Appointment, Location, Patient, Provider
from appointments.roles import FRONT_DESK
from notifications.channels import address_for
from notifications.messages.snapshot import snapshot
from notifications.models import Notification, NotificationAttempt, NotificationKind

STAFF_USERNAME = "bench-staff"
CHANNELS = ("email", "sms")


def reset():
    """Empty the tables the benchmark fills, so every run starts from the same state."""
    _truncate(Patient, Appointment, Notification, NotificationAttempt)


def clear_notifications():
    _truncate(Notification, NotificationAttempt)


def _truncate(*models):
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def staff_token():
    """A staff token of the front desk's role (the one that books), and the provider and
    location the benchmark's bookings name."""
    Provider.objects.get_or_create(name="Dr. Bench")
    Location.objects.get_or_create(name="Room 1")
    user, created = get_user_model().objects.get_or_create(username=STAFF_USERNAME, defaults={"is_staff": True})
    if created:
        user.set_unusable_password()
        user.save()
    user.groups.add(Group.objects.get(name=FRONT_DESK))  # shipped by a data migration
    return issue_token(user)


def patients(count):
    """Patients on email and SMS, each with a phone number of its own (the stand-in's requests
    are matched to appointments by it)."""
    first = (Patient.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    return Patient.objects.bulk_create(
        Patient(
            name=f"Bench Patient {n}",
            email=f"bench{n}@example.com",
            phone=f"+1415{n:07d}",
            timezone="Europe/London",
            channels=list(CHANNELS),
        )
        for n in range(first, first + count)
    )


def appointments(count):
    """Appointments a week ahead, written directly: no event, so no notification rows."""
    starts_at = timezone.now() + timedelta(days=7)
    return Appointment.objects.bulk_create(
        Appointment(patient=patient, provider="Dr. Bench", starts_at=starts_at, location="Room 1", reason="Benchmark")
        for patient in patients(count)
    )


def due_reminders(appointments, count, channels=CHANNELS):
    """`count` pending reminders already due, on the channels in turn (half by email and half
    by SMS by default), spread over the appointments; returns their primary keys' range."""
    now = timezone.now()
    snapshots = {appointment.pk: snapshot(appointment) for appointment in appointments}
    rows = []
    for i in range(count):
        appointment = appointments[i % len(appointments)]
        channel = channels[i % len(channels)]
        rows.append(
            Notification(
                appointment=appointment,
                patient=appointment.patient,
                kind=NotificationKind.REMINDER,
                channel=channel,
                scheduled_for=now - timedelta(seconds=count - i),
                recipient=address_for(appointment.patient, channel),
                context=snapshots[appointment.pk],
            )
        )
    created = Notification.objects.bulk_create(rows, batch_size=2_000)
    return created[0].pk, created[-1].pk


def insert_rows(first, last, status):
    """Rows numbered first..last in one INSERT ... SELECT generate_series, spread over the
    existing appointments, row n scheduled n seconds ago: `sent` history or `pending` due rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH a AS (SELECT array_agg(id ORDER BY id) AS ids, array_agg(patient_id ORDER BY id) AS patients
                       FROM {Appointment._meta.db_table})
            INSERT INTO {Notification._meta.db_table}
                (appointment_id, patient_id, kind, channel, status, scheduled_for, recipient, context,
                 attempts, last_error, error_code, provider_message_id, delivery_status, delivery_error_code,
                 sent_at, created_at, updated_at, possibly_sent, rendered_subject, rendered_text, rendered_html)
            SELECT a.ids[1 + mod(n, cardinality(a.ids))], a.patients[1 + mod(n, cardinality(a.ids))],
                   'reminder', CASE WHEN mod(n, 2) = 0 THEN 'email' ELSE 'sms' END, %(status)s,
                   now() - n * interval '1 second', 'bench' || n || '@example.com', '{{}}'::jsonb,
                   CASE WHEN %(status)s = 'sent' THEN 1 ELSE 0 END, '', '',
                   CASE WHEN %(status)s = 'sent' THEN 'SM' || md5(n::text) ELSE '' END,
                   CASE WHEN %(status)s = 'sent' THEN 'delivered' ELSE '' END, '',
                   CASE WHEN %(status)s = 'sent' THEN now() - n * interval '1 second' END,
                   now() - n * interval '1 second' - interval '2 days', now() - n * interval '1 second',
                   false, '', '', ''
            FROM a, generate_series(%(first)s, %(last)s) AS n
            """,
            {"first": first, "last": last, "status": status},
        )
        cursor.execute(f"ANALYZE {Notification._meta.db_table}")
