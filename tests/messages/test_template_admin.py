"""The admin's template pages: saving through the same checks and history as the API, the
preview panel, and restoring a revision."""

import pytest

from notifications.models import MessageTemplate, MessageTemplateRevision


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("clinic-admin", "admin@clinic.example", "admin-pass-123")
    client.force_login(user)
    client.user = user
    return client


def form(**fields):
    return {"channel": "sms", "kind": "reminder", "language": "es", "subject": "", "html": "", **fields}


def test_a_template_saved_in_the_admin_is_checked_and_kept_in_the_history(admin_client):
    refused = admin_client.post("/admin/notifications/messagetemplate/add/", form(text="Hola {{ patient_nam }}"))
    assert refused.status_code == 200
    assert "{{ patient_nam }}" in refused.content.decode()
    assert not MessageTemplate.objects.exists()

    saved = admin_client.post("/admin/notifications/messagetemplate/add/", form(text="Cita el {{ date }}"))

    assert saved.status_code == 302
    template = MessageTemplate.objects.get()
    assert (template.text, template.updated_by) == ("Cita el {{ date }}", admin_client.user)
    (revision,) = MessageTemplateRevision.objects.all()
    assert (revision.action, revision.editor_name, revision.after["text"]) == (
        "created",
        "clinic-admin",
        "Cita el {{ date }}",
    )


def test_the_change_page_has_the_preview_and_a_restore_button_per_revision(admin_client):
    admin_client.post("/admin/notifications/messagetemplate/add/", form(text="Uno {{ date }}"))
    template = MessageTemplate.objects.get()
    url = f"/admin/notifications/messagetemplate/{template.pk}/change/"
    assert admin_client.post(url, form(text="Dos {{ date }}")).status_code == 302

    page = admin_client.get(url).content.decode()

    assert 'id="template-preview"' in page and 'data-url="/api/templates/preview/"' in page
    first = MessageTemplateRevision.objects.get(action="created")
    restore_url = f"/admin/notifications/messagetemplate/{template.pk}/restore/{first.pk}/"
    assert f'formaction="{restore_url}"' in page

    assert admin_client.post(restore_url).status_code == 302
    template.refresh_from_db()
    assert template.text == "Uno {{ date }}"
    assert MessageTemplateRevision.objects.first().action == "restored"


def test_a_change_that_cannot_go_out_is_refused_on_the_change_page(admin_client):
    admin_client.post("/admin/notifications/messagetemplate/add/", form(text="Uno {{ date }}"))
    template = MessageTemplate.objects.get()

    response = admin_client.post(
        f"/admin/notifications/messagetemplate/{template.pk}/change/", form(text="Dos {{ fecha }}")
    )

    assert response.status_code == 200
    assert "{{ fecha }}" in response.content.decode()
    template.refresh_from_db()
    assert template.text == "Uno {{ date }}"
    assert MessageTemplateRevision.objects.count() == 1


def test_a_template_deleted_in_the_admin_leaves_its_history(admin_client):
    admin_client.post("/admin/notifications/messagetemplate/add/", form(text="Uno {{ date }}"))
    template = MessageTemplate.objects.get()

    response = admin_client.post(f"/admin/notifications/messagetemplate/{template.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not MessageTemplate.objects.exists()
    assert [r.action for r in MessageTemplateRevision.objects.all()] == ["deleted", "created"]


def test_the_preview_answers_the_admin_session(admin_client):
    response = admin_client.post(
        "/api/templates/preview/",
        {"channel": "whatsapp", "kind": "reminder", "language": "en", "text": "{{ date }}"},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert response.json()["text"] == "Tuesday 8 December 2026"
    assert response.json()["segments"] == 1


@pytest.mark.parametrize(
    ("codenames", "restored"), [(["change_messagetemplate"], False), (["restore_messagetemplate"], True)]
)
def test_restoring_in_the_admin_needs_the_restore_permission_as_the_api_does(client, staff_user, codenames, restored):
    from django.contrib.auth.models import Permission

    from notifications.messages.store import save_template

    key = {"channel": "sms", "kind": "reminder", "language": "es"}
    template = save_template(None, {**key, "text": "Uno {{ date }}"}, staff_user)
    save_template(template, {**key, "text": "Dos {{ date }}"}, staff_user)
    first = MessageTemplateRevision.objects.get(action="created")
    staff_user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_messagetemplate", "view_messagetemplaterevision", *codenames])
    )
    client.force_login(staff_user)

    client.post(f"/admin/notifications/messagetemplate/{template.pk}/restore/{first.pk}/")
    client.post(
        "/admin/notifications/messagetemplaterevision/",
        {"action": "restore_selected", "_selected_action": [first.pk]},
    )

    template.refresh_from_db()
    assert (template.text == "Uno {{ date }}") is restored
