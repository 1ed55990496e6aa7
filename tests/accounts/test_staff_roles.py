"""One permission model for the admin and the API: every staff endpoint checks Django's model
permissions (view for GET, add, change, delete) and the named ones for retry, preview and restore;
the roles ship as groups; a staff account with no permission is refused everywhere."""

import re

import pytest
from django.contrib.auth.models import Group, Permission
from drf_spectacular.generators import SchemaGenerator

from appointments.models import Location, Patient, Provider
from notifications.messages.models import MessageTemplate, MessageTemplateRevision
from notifications.messages.store import save_template
from notifications.models import Notification
from tests.conftest import booking, token_client

# Open to anyone (signing in, the API's description); every other operation is someone's.
PUBLIC = {"/api/auth/token/", "/api/schema/"}


def operations():
    """(method, path) of every operation the API describes."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        if path not in PUBLIC
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    return found


@pytest.fixture
def records(db, book, make_patient, clinic, staff_user):
    """One of each thing a path can name."""
    appointment = book(patient=make_patient())
    template = save_template(
        None, {"channel": "sms", "kind": "reminder", "language": "en", "text": "See you soon."}, staff_user
    )
    return {
        "patients": appointment.patient_id,
        "appointments": appointment.pk,
        "notifications": appointment.notifications.first().pk,
        "inbox": appointment.notifications.first().pk,
        "providers": Provider.objects.first().pk,
        "locations": Location.objects.first().pk,
        "templates": template.pk,
        "template-revisions": MessageTemplateRevision.objects.first().pk,
    }


def concrete(path, records):
    """The path with its parameter filled by an existing record of the collection it names (any id
    for a collection added later: the permission is checked before the row is looked up)."""
    collection = path.split("/")[2]
    return re.sub(r"\{[^}]+\}", str(records.get(collection, 1)), path)


@pytest.fixture
def idle_staff(django_user_model):
    return django_user_model.objects.create_user("idle", "idle@clinic.example", "idle-pass-123", is_staff=True)


def send(client, method, path, body=None):
    return getattr(client, method.lower())(path, body or {}, format="json")


def test_every_staff_endpoint_refuses_a_staff_account_with_no_permission(idle_staff, records, client):
    api = token_client(idle_staff)
    client.force_login(idle_staff)

    answers = {
        f"{method} {path}": send(api, method, concrete(path, records)).status_code for method, path in operations()
    }
    answers["GET /metrics"] = client.get("/metrics").status_code
    answers["GET /admin/notifications/dashboard/"] = client.get("/admin/notifications/dashboard/").status_code

    assert answers == {operation: 403 for operation in answers}
    assert len(answers) > 20  # every operation of the schema was tried


def test_the_roles_ship_as_groups_with_the_permissions_they_need(db):
    roles = {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.prefetch_related("permissions__content_type")
    }

    assert {"Front desk", "Clinic manager", "Auditor"} <= set(roles)
    assert {"appointments.add_patient", "appointments.change_appointment", "notifications.view_notification"} <= (
        roles["Front desk"]
    )
    assert "notifications.retry_notification" not in roles["Front desk"]
    assert roles["Front desk"] < roles["Clinic manager"]
    assert {
        "notifications.retry_notification",
        "notifications.change_messagetemplate",
        "notifications.preview_messagetemplate",
        "notifications.restore_messagetemplate",
        "appointments.add_provider",
        "appointments.add_location",
    } <= roles["Clinic manager"]
    assert {name.split(".")[1][:5] for name in roles["Auditor"]} == {"view_"}
    assert {"appointments.view_patient", "notifications.view_messagetemplaterevision"} <= roles["Auditor"]


def test_the_manager_keeps_the_clinics_identity_and_the_auditor_reads_the_webhooks_too(db):
    roles = {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.prefetch_related("permissions__content_type")
    }

    assert {"appointments.view_clinic", "appointments.change_clinic"} <= roles["Clinic manager"]
    assert {"appointments.view_clinic", "integrations.view_webhookendpoint", "integrations.view_webhookdelivery"} <= (
        roles["Auditor"]
    )


def test_the_data_rights_permissions_are_declared(db):
    assert set(
        Permission.objects.filter(content_type__app_label="appointments").values_list("codename", flat=True)
    ) >= {"export_patient", "erase_patient"}


def member_of(django_user_model, role):
    user = django_user_model.objects.create_user(role, f"{role[:5]}@clinic.example", "role-pass-123", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = token_client(user)
    client.user = user
    return client


@pytest.fixture
def front_desk(django_user_model):
    return member_of(django_user_model, "Front desk")


@pytest.fixture
def manager(django_user_model):
    return member_of(django_user_model, "Clinic manager")


@pytest.fixture
def auditor(django_user_model):
    return member_of(django_user_model, "Auditor")


def failed_row(records):
    Notification.objects.filter(pk=records["notifications"]).update(status="failed", last_error="dead")
    return records["notifications"]


def test_the_front_desk_registers_patients_and_books_but_does_not_retry_or_edit_templates(front_desk, records):
    ann = {"name": "Ann", "email": "ann@example.com", "phone": "+14155550111", "channels": ["email"]}
    registered = front_desk.post("/api/patients/", ann, format="json")
    booked = front_desk.post("/api/appointments/", booking(Patient.objects.get(email="ann@example.com")), format="json")

    assert (registered.status_code, booked.status_code) == (201, 201)
    assert front_desk.get("/api/notifications/").status_code == 200
    assert front_desk.post(f"/api/notifications/{failed_row(records)}/retry/").status_code == 403
    assert front_desk.post("/api/providers/", {"name": "Dr. New"}, format="json").status_code == 403
    assert front_desk.patch(f"/api/templates/{records['templates']}/", {"text": "Hi"}, format="json").status_code == 403


def test_the_clinic_manager_retries_and_keeps_records_and_templates(manager, records):
    template = {"channel": "sms", "kind": "reminder", "language": "es", "text": "Hasta pronto."}

    assert manager.post(f"/api/notifications/{failed_row(records)}/retry/").status_code == 200
    assert manager.post("/api/providers/", {"name": "Dr. New"}, format="json").status_code == 201
    assert manager.post("/api/locations/", {"name": "Room 9"}, format="json").status_code == 201
    assert manager.post("/api/templates/", template, format="json").status_code == 201
    preview = {"channel": "sms", "kind": "reminder", "language": "en", "text": "Soon."}
    assert manager.post("/api/templates/preview/", preview, format="json").status_code == 200
    revision = MessageTemplateRevision.objects.order_by("pk").first().pk
    assert manager.post(f"/api/template-revisions/{revision}/restore/").status_code == 200


def test_the_auditor_reads_everything_and_changes_nothing(auditor, records, client):
    for collection in ("patients", "appointments", "notifications", "templates", "template-revisions"):
        assert auditor.get(f"/api/{collection}/{records[collection]}/").status_code == 200, collection
    assert auditor.get(f"/api/appointments/{records['appointments']}/notifications/").status_code == 200
    client.force_login(auditor.user)
    assert client.get("/metrics").status_code == 200

    assert auditor.post(f"/api/notifications/{failed_row(records)}/retry/").status_code == 403
    assert auditor.patch(f"/api/patients/{records['patients']}/", {"name": "X"}, format="json").status_code == 403
    assert auditor.post(f"/api/appointments/{records['appointments']}/cancel/", {}, format="json").status_code == 403
    assert MessageTemplate.objects.filter(text="See you soon.").exists()
