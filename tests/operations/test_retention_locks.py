"""The retention purge against staff on another connection (issue 27, finding 13): a row's delete
takes its fallback with it (CASCADE), so the fallback must be locked and checked again too, or
a fallback staff retry between the purge's check and its delete is deleted while pending.

PostgreSQL only: SQLite runs one writer at a time, so the two cannot interleave there. The
purge is held inside its DELETE by a trigger waiting on an advisory lock the test holds, so the
interleaving is the same on every run."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from appointments.models import Appointment
from notifications.models import Notification
from notifications.operations import retention
from tests.conftest import wait_for

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="two writers interleave on PostgreSQL only")

HOLD = 2727  # the advisory lock the purge's DELETE waits on
CUTOFF_DAYS = 180
TABLE = Notification._meta.db_table


@pytest.fixture
def purge_held_in_its_delete(transactional_db):
    """Every DELETE of a notification row waits for the test to let go of HOLD."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION hold_notification_delete() RETURNS trigger AS $$ "
            f"BEGIN PERFORM pg_advisory_xact_lock_shared({HOLD}); RETURN OLD; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            f"CREATE TRIGGER hold_notification_delete BEFORE DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION hold_notification_delete()"
        )
        cursor.execute("SELECT pg_advisory_lock(%s)", [HOLD])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_all()")
            cursor.execute(f"DROP TRIGGER IF EXISTS hold_notification_delete ON {TABLE}")
            cursor.execute("DROP FUNCTION IF EXISTS hold_notification_delete()")


def waiting(locktype):
    """How many backends of this database wait for a lock of this type."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND l.locktype = %s AND a.datname = current_database()",
            [locktype],
        )
        return cursor.fetchone()[0]


def in_thread(function, *args):
    """Run function on its own connection; returns the thread and a dict its result lands in."""
    result = {}

    def run():
        try:
            result["value"] = function(*args)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def old_row(appointment, status, channel, **fields):
    touched = timezone.now() - timedelta(days=200)
    return Notification.objects.create(
        appointment=appointment,
        patient=appointment.patient,
        kind="reminder",
        channel=channel,
        status=status,
        scheduled_for=touched,
        recipient="x",
        updated_at=touched,
        **fields,
    )


def test_a_fallback_staff_retry_while_the_purge_deletes_its_row_is_not_deleted(purge_held_in_its_delete, make_patient):
    appointment = Appointment.objects.create(
        patient=make_patient(), provider="Dr. Ada Lovelace", starts_at=timezone.now() - timedelta(days=197)
    )
    dead_sms = old_row(appointment, "failed", "sms", last_error="Twilio 400 error 21211")
    fallback = old_row(appointment, "failed", "email", fallback_for=dead_sms, last_error="SMTP 550")

    # The purge's batch holds the SMS row alone (its fallback would go with it, by CASCADE).
    purge, purged = in_thread(retention.delete_still_purgeable, [dead_sms.pk], CUTOFF_DAYS)
    wait_for(lambda: waiting("advisory") == 1)  # inside its DELETE, its checks done
    staff, retried = in_thread(lambda: Notification.objects.filter(pk=fallback.pk).retry())
    wait_for(lambda: "value" in retried or waiting("transactionid") == 1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [HOLD])
    purge.join(15), staff.join(15)

    kept = Notification.objects.filter(pk=fallback.pk, status="pending").exists()
    # A retry staff were told worked (1 row) must leave a pending row; here the purge came first.
    assert (retried["value"], kept) == (0, False)
    assert purged["value"] == 2  # the SMS row and its fallback
