"""The trail of who looked: every staff read of a patient's data appends who, when, which patient,
what and from where; a patient's own reads leave none; auditors read it; no one edits or deletes
an entry, through the model, the admin or the API."""

import pytest
from django.contrib.auth.models import Permission

from privacy.models import AccessLogEntry, AppendOnly
from tests.conftest import in_role, token_client


def trail():
    return sorted((e.username, e.patient_id, e.action, e.path) for e in AccessLogEntry.objects.all())


@pytest.fixture
def two_patients(book, make_patient):
    first, second = book(patient=make_patient()), book(patient=make_patient())
    return first, second


def test_each_staff_read_through_the_api_appends_one_entry_per_patient_shown(staff_client, two_patients):
    first, second = two_patients
    row = first.notifications.first()

    answers = [
        staff_client.get(path).status_code
        for path in (
            "/api/patients/",
            f"/api/patients/{first.patient_id}/",
            "/api/appointments/",
            f"/api/appointments/{second.pk}/",
            f"/api/appointments/{first.pk}/notifications/",
            "/api/notifications/",
            f"/api/notifications/{row.pk}/",
        )
    ]

    assert answers == [200] * 7
    a, b = first.patient_id, second.patient_id
    assert trail() == sorted(
        [
            ("staff", a, "patient.list", "/api/patients/"),
            ("staff", b, "patient.list", "/api/patients/"),
            ("staff", a, "patient.retrieve", f"/api/patients/{a}/"),
            ("staff", a, "appointment.list", "/api/appointments/"),
            ("staff", b, "appointment.list", "/api/appointments/"),
            ("staff", b, "appointment.retrieve", f"/api/appointments/{second.pk}/"),
            ("staff", a, "appointment.notifications", f"/api/appointments/{first.pk}/notifications/"),
            ("staff", a, "notification.list", "/api/notifications/"),
            ("staff", b, "notification.list", "/api/notifications/"),
            ("staff", a, "notification.retrieve", f"/api/notifications/{row.pk}/"),
        ]
    )


def test_an_entry_says_when_and_from_which_address(staff_client, two_patients, staff_user):
    first, _ = two_patients

    # No trusted proxy (TRUSTED_PROXY_COUNT=0): a forwarded address the client wrote is not believed.
    staff_client.get(f"/api/patients/{first.patient_id}/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="6.6.6.6")

    entry = AccessLogEntry.objects.get()
    assert (entry.user_id, entry.remote_address) == (staff_user.pk, "203.0.113.7")
    assert entry.at is not None


def test_behind_a_trusted_proxy_the_entry_keeps_the_address_the_proxy_received(staff_client, two_patients, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    first, _ = two_patients

    staff_client.get(
        f"/api/patients/{first.patient_id}/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4"
    )

    assert AccessLogEntry.objects.get().remote_address == "198.51.100.4"


def test_a_patient_reading_their_own_data_leaves_no_entry(patient_client, book):
    appointment = book(patient=patient_client.patient)

    patient_client.get(f"/api/patients/{patient_client.patient.pk}/")
    patient_client.get(f"/api/appointments/{appointment.pk}/")
    patient_client.get(f"/api/appointments/{appointment.pk}/notifications/")

    assert trail() == []


def test_a_refused_or_failed_read_leaves_no_entry(staff_client, two_patients):
    assert staff_client.get("/api/patients/999999/").status_code == 404
    assert trail() == []


def test_the_admin_change_pages_of_patients_appointments_and_notifications_leave_entries(
    client, django_user_model, two_patients
):
    first, _ = two_patients
    boss = django_user_model.objects.create_superuser("boss", "boss@clinic.example", "boss-pass-123")
    client.force_login(boss)
    row = first.notifications.first()

    pages = [
        f"/admin/appointments/patient/{first.patient_id}/change/",
        f"/admin/appointments/appointment/{first.pk}/change/",
        f"/admin/notifications/notification/{row.pk}/change/",
    ]
    assert [client.get(page).status_code for page in pages] == [200, 200, 200]

    p = first.patient_id
    assert trail() == sorted(
        [
            ("boss", p, "admin.patient.change", pages[0]),
            ("boss", p, "admin.appointment.change", pages[1]),
            ("boss", p, "admin.notification.change", pages[2]),
        ]
    )


@pytest.fixture
def auditor(django_user_model):
    user = django_user_model.objects.create_user("audit", "audit@clinic.example", "audit-pass-123", is_staff=True)
    return token_client(in_role(user, "Auditor"))


def test_auditors_read_the_trail_of_one_patient(auditor, staff_client, two_patients):
    first, second = two_patients
    staff_client.get(f"/api/patients/{first.patient_id}/")
    staff_client.get(f"/api/patients/{second.patient_id}/")

    response = auditor.get(f"/api/access-log/?patient={first.patient_id}")

    assert response.status_code == 200
    [entry] = response.json()["results"]
    assert {k: entry[k] for k in ("user", "patient", "action", "path")} == {
        "user": "staff",
        "patient": first.patient_id,
        "action": "patient.retrieve",
        "path": f"/api/patients/{first.patient_id}/",
    }


def test_the_trail_filter_names_a_bad_patient(auditor):
    response = auditor.get("/api/access-log/?patient=abc")

    assert response.status_code == 400
    assert "patient" in response.json()


def test_front_desk_and_patients_cannot_read_the_trail(django_user_model, patient_client):
    desk = django_user_model.objects.create_user("desk", "desk@clinic.example", "desk-pass-123", is_staff=True)

    assert token_client(in_role(desk, "Front desk")).get("/api/access-log/").status_code == 403
    assert patient_client.get("/api/access-log/").status_code == 403


@pytest.fixture
def entry(staff_client, two_patients):
    staff_client.get(f"/api/patients/{two_patients[0].patient_id}/")
    return AccessLogEntry.objects.get()


def test_an_entry_cannot_be_edited_or_deleted_through_the_model(entry):
    entry.action = "nothing"
    for attempt in (
        entry.save,
        entry.delete,
        AccessLogEntry.objects.all().delete,
        lambda: AccessLogEntry.objects.update(action="nothing"),
    ):
        with pytest.raises(AppendOnly):
            attempt()

    assert AccessLogEntry.objects.get().action == "patient.retrieve"


def test_an_entry_cannot_be_edited_or_deleted_through_the_admin_or_the_api(entry, client, django_user_model, auditor):
    boss = django_user_model.objects.create_superuser("boss", "boss@clinic.example", "boss-pass-123")
    client.force_login(boss)
    page = f"/admin/privacy/accesslogentry/{entry.pk}/"

    assert client.post(f"{page}change/", {"action": "nothing"}).status_code == 403
    assert client.post(f"{page}delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/privacy/accesslogentry/add/").status_code == 403
    bulk = client.post(
        "/admin/privacy/accesslogentry/", {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )
    assert bulk.status_code == 200  # the changelist again, with no delete action offered
    # The API lists the trail and nothing more.
    assert auditor.post("/api/access-log/", {"action": "x"}, format="json").status_code == 403
    for method in ("put", "patch", "delete"):
        assert getattr(auditor, method)(f"/api/access-log/{entry.pk}/", {}, format="json").status_code == 404

    assert list(AccessLogEntry.objects.values_list("pk", "action")) == [(entry.pk, "patient.retrieve")]


def test_the_auditor_role_holds_the_trail_view_permission(db):
    from django.contrib.auth.models import Group

    auditor = Group.objects.get(name="Auditor")

    assert auditor.permissions.filter(content_type__app_label="privacy", codename="view_accesslogentry").exists()
    assert Permission.objects.filter(codename="view_accesslogentry").count() == 1


def test_the_consoles_patient_story_leaves_an_entry(client, django_user_model, two_patients):
    first, _ = two_patients
    boss = django_user_model.objects.create_superuser("boss", "boss@clinic.example", "boss-pass-123")
    client.force_login(boss)
    page = f"/admin/console/patients/{first.patient_id}/"

    assert client.get(page).status_code == 200

    assert trail() == [("boss", first.patient_id, "console.patient", page)]
