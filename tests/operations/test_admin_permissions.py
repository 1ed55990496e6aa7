"""The admin follows Django's permissions, the API's: Retry needs the retry permission, Cancel the
change permission, the dashboard the view permission; notification rows are read-only; a patient's JSON fields are
validated as the API validates them."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from appointments.models import Appointment, Patient
from notifications.models import Notification

CHANGELIST = "/admin/notifications/notification/"


def allow(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


@pytest.fixture
def row(make_patient):
    patient = make_patient()
    appointment = Appointment.objects.create(
        patient=patient, provider="Dr. Ada Lovelace", starts_at=timezone.now() + timedelta(days=3)
    )
    return Notification.objects.create(
        appointment=appointment,
        patient=patient,
        kind="booking_confirmation",
        channel="sms",
        status="failed",
        scheduled_for=timezone.now(),
        recipient=patient.phone,
        last_error="dead",
    )


@pytest.fixture
def viewer(client, staff_user):
    """Staff who may look at notifications, not change them."""
    allow(staff_user, "view_notification")
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize(("action", "status"), [("retry_selected", "failed"), ("cancel_selected", "pending")])
def test_retry_and_cancel_need_more_than_the_view_permission(viewer, row, action, status):
    Notification.objects.filter(pk=row.pk).update(status=status)

    viewer.post(CHANGELIST, {"action": action, "_selected_action": [row.pk]})

    row.refresh_from_db()
    assert row.status == status


def test_the_change_permission_does_not_retry_a_row(client, staff_user, row):
    allow(staff_user, "view_notification", "change_notification")
    client.force_login(staff_user)

    client.post(CHANGELIST, {"action": "retry_selected", "_selected_action": [row.pk]})

    row.refresh_from_db()
    assert row.status == "failed"


def test_staff_with_the_retry_permission_retry_a_failed_row(client, staff_user, row):
    allow(staff_user, "view_notification", "retry_notification")
    client.force_login(staff_user)

    client.post(CHANGELIST, {"action": "retry_selected", "_selected_action": [row.pk]})

    row.refresh_from_db()
    assert row.status == "pending"


def test_the_dashboard_needs_the_view_permission(client, staff_user, db):
    client.force_login(staff_user)

    assert client.get("/admin/notifications/dashboard/").status_code == 403


def test_notification_rows_cannot_be_added_in_the_admin(client, staff_user, db):
    allow(staff_user, "view_notification", "change_notification", "add_notification")
    client.force_login(staff_user)

    assert client.get(f"{CHANGELIST}add/").status_code == 403


def test_no_field_of_a_notification_row_is_edited_in_the_admin(client, staff_user, row):
    allow(staff_user, "view_notification", "change_notification")
    client.force_login(staff_user)
    before = Notification.objects.filter(pk=row.pk).values().get()

    client.post(
        f"{CHANGELIST}{row.pk}/change/",
        {
            "appointment": row.appointment_id,
            "patient": row.patient_id,
            "recipient": "+19005550100",
            "channel": "email",
            "context": '{"provider": "your bank"}',
            "scheduled_for_0": "2030-01-01",
            "scheduled_for_1": "09:00:00",
            "kind": "reminder",
            "attempts-TOTAL_FORMS": "0",
            "attempts-INITIAL_FORMS": "0",
        },
    )

    assert Notification.objects.filter(pk=row.pk).values().get() == before


@pytest.fixture
def patient_editor(client, staff_user):
    allow(staff_user, "view_patient", "change_patient")
    client.force_login(staff_user)
    return client


@pytest.mark.parametrize(
    ("field", "value"),
    [("channels", ["fax"]), ("channels", []), ("opted_out", ["carrier_pigeon"])],
)
def test_a_patients_channel_boxes_are_validated_as_the_api_does(patient_editor, make_patient, field, value):
    patient = make_patient()
    form = {
        "name": patient.name,
        "email": patient.email,
        "phone": patient.phone,
        "timezone": patient.timezone,
        "language": patient.language,
        "channels": ["email"],
        "opted_out": [],
    }

    response = patient_editor.post(f"/admin/appointments/patient/{patient.pk}/change/", form | {field: value})

    assert response.status_code == 200  # the form again
    assert field in response.context["adminform"].form.errors
    assert Patient.objects.get(pk=patient.pk).channels == ["email", "sms"]


def test_a_patient_saved_in_the_admin_keeps_their_sign_in_email_in_step(patient_editor, make_patient):
    patient = make_patient(password="patient-pass-123")
    form = {
        "name": patient.name,
        "email": "renamed@example.com",
        "phone": patient.phone,
        "timezone": patient.timezone,
        "language": patient.language,
        "channels": ["email", "in_app"],
        "opted_out": [],
    }

    response = patient_editor.post(f"/admin/appointments/patient/{patient.pk}/change/", form)

    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.channels, patient.user.username) == (["email", "in_app"], "renamed@example.com")
