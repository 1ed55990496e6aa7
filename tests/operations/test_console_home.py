"""The console's home (/admin/, the admin's index): today's figures and what needs attention, each
line linking to the rows behind it, its retry and cancel buttons refused without permission."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from appointments.models import Appointment
from notifications.channels import address_for
from notifications.models import Notification

HOME = "/admin/"


@pytest.fixture
def make_row():
    def make(patient, status, channel="sms", minutes_ago=60, appointment=None, **fields):
        appointment = appointment or Appointment.objects.create(
            patient=patient, provider="Dr. Ada Lovelace", starts_at=timezone.now() + timedelta(days=5)
        )
        fields.setdefault("recipient", address_for(patient, channel))
        return Notification.objects.create(
            appointment=appointment,
            patient=patient,
            kind="reminder",
            channel=channel,
            status=status,
            scheduled_for=timezone.now() - timedelta(minutes=minutes_ago),
            **fields,
        )

    return make


def staff_with(django_user_model, *codenames):
    user = django_user_model.objects.create_user("desk", "desk@clinic.example", "desk-pass-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def listed(client, url):
    """The rows a notification list URL shows."""
    response = client.get(url)
    assert response.status_code == 200, url
    return set(response.context["cl"].result_list)


def test_staff_land_on_the_console_after_signing_in(client, admin_user):
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "password"}, follow=True)

    assert response.redirect_chain[-1][0] == HOME
    assert "admin/console/home.html" in [t.name for t in response.templates]
    assert b"Needs attention" in response.content
    # The admin's own sections are still there, below.
    assert b'href="/admin/appointments/patient/"' in response.content


def test_view_site_and_the_bare_host_lead_to_the_console(admin_client):
    page = admin_client.get("/admin/appointments/patient/").content.decode()
    assert '<a href="/admin/">View site</a>' in page
    assert admin_client.get("/")["Location"] == HOME


def test_dead_rows_are_listed_and_link_to_exactly_those_rows(admin_client, make_patient, make_row):
    patient = make_patient()
    dead = make_row(patient, "failed", attempts=5, died_at=timezone.now(), last_error="Twilio 500")
    retrying = make_row(patient, "failed", attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=5))
    make_row(patient, "sent")

    attention = admin_client.get(HOME).context["attention"]

    assert attention["dead"] == [dead] and attention["dead_count"] == 1
    assert listed(admin_client, attention["dead_url"]) == {dead}
    assert retrying not in listed(admin_client, attention["dead_url"])


def test_unreachable_patients_are_named_with_the_reason_and_their_rows(admin_client, make_patient, make_row):
    no_phone = make_patient(name="No Phone", channels=["email", "sms", "whatsapp"], phone="")
    landline = make_patient(name="Land Line", channels=["sms"], phone="+14155550111")
    refused = make_row(landline, "failed", error_code="21614", died_at=timezone.now())
    moved_on = make_patient(name="Moved On", channels=["sms"], phone="+14155550122")
    make_row(moved_on, "failed", error_code="21614", recipient="+14155550999", died_at=timezone.now())
    quiet = make_patient(name="All Quiet", channels=["sms", "email"], opted_out=["email", "sms"])
    bounced = make_patient(name="Bad Mailbox", channels=["email"], email="gone@example.com")
    bounce = make_row(bounced, "failed", channel="email", error_code="550", last_error="SMTP 550: no such user")
    make_patient(name="Fine Person", channels=["email", "sms"])

    found = {(u.patient.name, u.channel): u for u in admin_client.get(HOME).context["attention"]["unreachable"]}

    assert set(found) == {
        ("No Phone", "sms"),
        ("No Phone", "whatsapp"),
        ("Land Line", "sms"),
        ("All Quiet", "*"),
        ("Bad Mailbox", "email"),
    }
    assert found["No Phone", "sms"].reason == "chose SMS but has no phone number"
    assert found["Land Line", "sms"].reason == "+…0111: Twilio: not a mobile number (21614)"
    assert found["All Quiet", "*"].reason == "opted out of every channel they chose"
    assert found["Bad Mailbox", "email"].reason == "g***@example.com: email bounced: SMTP 550: no such user"
    assert listed(admin_client, found["Land Line", "sms"].rows_url) == {refused}
    assert listed(admin_client, found["Bad Mailbox", "email"].rows_url) == {bounce}
    assert admin_client.get(found["No Phone", "sms"].story_url).status_code == 200
    assert found["No Phone", "sms"].patient_url == f"/admin/appointments/patient/{no_phone.pk}/change/"
    assert quiet.pk and moved_on.pk


def test_appointments_soon_with_nothing_delivered_are_listed(admin_client, make_patient, make_row):
    patient = make_patient()

    def appointment(hours, **fields):
        return Appointment.objects.create(
            patient=patient, provider="Dr. Who", starts_at=timezone.now() + timedelta(hours=hours), **fields
        )

    unheard, delivered, bounced, later, cancelled = (
        appointment(20),
        appointment(21),
        appointment(22),
        appointment(72),
        appointment(23, status="cancelled"),
    )
    never_sent = make_row(patient, "failed", appointment=unheard, died_at=timezone.now())
    make_row(patient, "sent", appointment=delivered, delivery_status="delivered")
    make_row(patient, "sent", appointment=bounced, delivery_status="undelivered", delivery_error_code="30003")

    attention = admin_client.get(HOME).context["attention"]

    assert [a for a, _ in attention["unheard"]] == [unheard, bounced]
    url = dict(attention["unheard"])[unheard]
    assert listed(admin_client, url) == {never_sent}
    assert later.pk and cancelled.pk


def test_the_due_backlog_and_the_age_of_its_oldest_row(admin_client, make_patient, make_row):
    patient = make_patient()
    oldest = make_row(patient, "pending", minutes_ago=30)
    retry_due = make_row(patient, "failed", next_attempt_at=timezone.now() - timedelta(minutes=1))
    make_row(patient, "pending", minutes_ago=-60)  # not yet due

    response = admin_client.get(HOME)
    attention = response.context["attention"]

    assert attention["due_count"] == 2
    assert 30 * 60 <= attention["due_oldest_seconds"] < 31 * 60
    assert listed(admin_client, attention["due_url"]) == {oldest, retry_due}
    assert b'id="oldest-due"' in response.content


def test_retry_and_cancel_are_refused_without_the_permission(client, django_user_model, make_patient, make_row):
    patient = make_patient()
    dead = make_row(patient, "failed", died_at=timezone.now())
    pending = make_row(patient, "pending")
    client.force_login(staff_with(django_user_model, "view_notification", "view_patient"))

    page = client.get(HOME)
    refused = [
        client.post(f"/admin/console/rows/{dead.pk}/retry/"),
        client.post(f"/admin/console/rows/{pending.pk}/cancel/"),
    ]

    assert page.status_code == 200 and page.context["attention"]["dead"] == [dead]
    assert b">Retry<" not in page.content and b">Cancel<" not in page.content
    assert [r.status_code for r in refused] == [403, 403]
    dead.refresh_from_db(), pending.refresh_from_db()
    assert (dead.status, pending.status) == ("failed", "pending")


def test_retry_and_cancel_with_the_permission(client, django_user_model, make_patient, make_row):
    patient = make_patient()
    dead = make_row(patient, "failed", died_at=timezone.now(), attempts=5)
    pending = make_row(patient, "pending", minutes_ago=-30)
    client.force_login(staff_with(django_user_model, "view_notification", "change_notification", "retry_notification"))

    assert b">Retry<" in client.get(HOME).content
    retried = client.post(f"/admin/console/rows/{dead.pk}/retry/")
    cancelled = client.post(f"/admin/console/rows/{pending.pk}/cancel/")

    assert retried.status_code == cancelled.status_code == 302
    dead.refresh_from_db(), pending.refresh_from_db()
    assert (dead.status, dead.attempts, pending.status) == ("pending", 0, "cancelled")


def test_staff_who_may_not_read_rows_see_the_admin_alone(client, django_user_model, make_patient, make_row):
    make_row(make_patient(), "failed", died_at=timezone.now())
    client.force_login(staff_with(django_user_model, "view_appointment"))

    response = client.get(HOME)

    assert response.status_code == 200
    assert "attention" not in response.context
    assert b"Needs attention" not in response.content
    assert b'href="/admin/appointments/appointment/"' in response.content


def test_the_browsable_apis_401_offers_sign_in(client, admin_user):
    page = client.get("/api/patients/", HTTP_ACCEPT="text/html")

    assert page.status_code == 401
    assert b"href='/api-auth/login/?next=/api/patients/'>Log in" in page.content
    signed_in = client.post(
        "/api-auth/login/?next=/api/patients/", {"username": "admin", "password": "password", "next": "/api/patients/"}
    )
    assert signed_in["Location"] == "/api/patients/"
    assert client.get("/api/patients/", HTTP_ACCEPT="text/html").status_code == 200
