"""The admin's forms for people: a patient's channels and opt-outs as checkboxes, the notification
list's patient, recipient and error columns (masked), proper channel labels, records shown
without Save buttons, and a template editor that finds nothing wrong before anything is typed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from appointments.models import Appointment, Patient
from notifications.inbound.models import InboundMessage
from notifications.models import Notification, NotificationAttempt
from notifications.outbox.models import Channel

INLINES = {
    "inbound_messages-TOTAL_FORMS": "0",
    "inbound_messages-INITIAL_FORMS": "0",
    "inbound_messages-MIN_NUM_FORMS": "0",
    "inbound_messages-MAX_NUM_FORMS": "1000",
}


def patient_form(**fields):
    return {
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "phone": "+14155550123",
        "timezone": "Europe/London",
        "language": "en",
        **INLINES,
        **fields,
    }


@pytest.fixture
def row(make_patient):
    patient = make_patient(name="Grace Hopper", email="grace@example.com", phone="+14155550123", channels=["sms"])
    appointment = Appointment.objects.create(
        patient=patient, provider="Dr. Ada Lovelace", starts_at=timezone.now() + timedelta(days=2)
    )
    row = Notification.objects.create(
        appointment=appointment,
        patient=patient,
        kind="reminder",
        channel="sms",
        status="failed",
        scheduled_for=timezone.now(),
        recipient="+14155550123",
        attempts=1,
        died_at=timezone.now(),
        error_code="21614",
        last_error="Twilio 400 error 21614: The 'To' number is not a mobile number",
    )
    NotificationAttempt.objects.create(notification=row, number=1, finished_at=timezone.now(), outcome="failed")
    return row


def test_channels_and_opt_outs_are_checkboxes_with_proper_labels(admin_client):
    page = admin_client.get("/admin/appointments/patient/add/").content.decode()

    for name in ("channels", "opted_out"):
        for value, label in [("email", "Email"), ("sms", "SMS"), ("whatsapp", "WhatsApp"), ("in_app", "In-app")]:
            assert f'type="checkbox" name="{name}" value="{value}"' in page
            assert f"{label}</label>" in page
    assert '<textarea name="channels"' not in page


def test_ticked_boxes_save_as_lists_and_unticked_ones_clear(admin_client):
    added = admin_client.post(
        "/admin/appointments/patient/add/", patient_form(channels=["email", "sms"], opted_out=["sms"])
    )
    patient = Patient.objects.get()
    changed = admin_client.post(
        f"/admin/appointments/patient/{patient.pk}/change/", patient_form(channels=["whatsapp"])
    )

    assert added.status_code == changed.status_code == 302
    patient.refresh_from_db()
    assert (patient.channels, patient.opted_out) == (["whatsapp"], [])


def test_a_patient_must_choose_a_channel(admin_client):
    response = admin_client.post("/admin/appointments/patient/add/", patient_form())

    assert response.status_code == 200
    assert "channels" in response.context["adminform"].form.errors
    assert not Patient.objects.exists()


def test_channel_choices_read_as_people_write_them():
    assert dict(Channel.choices) == {"email": "Email", "sms": "SMS", "whatsapp": "WhatsApp", "in_app": "In-app"}


def test_the_notification_list_shows_patient_recipient_and_error_masked(admin_client, row):
    page = admin_client.get("/admin/notifications/notification/").content.decode()

    for column in ("column-patient_masked", "column-recipient_masked", "column-outcome", "column-error"):
        assert column in page
    assert f'<a href="/admin/console/patients/{row.patient_id}/">Grace H.</a>' in page
    assert "+…0123" in page and "+14155550123" not in page
    assert (
        '<td class="field-error">21614 Twilio 400 error 21614: The &#x27;To&#x27; number is not a mobile num…</td>'
        in page
    )


def test_the_patient_list_masks_contact_details(admin_client, row):
    page = admin_client.get("/admin/appointments/patient/").content.decode()

    assert "+…0123" in page and "g***@example.com" in page
    assert "+14155550123" not in page and "grace@example.com" not in page


def test_a_notification_is_a_record_without_save_buttons(admin_client, row):
    page = admin_client.get(f"/admin/notifications/notification/{row.pk}/change/")

    assert page.status_code == 200
    assert b'name="_save"' not in page.content and b'name="_continue"' not in page.content
    # Its POST changes nothing either.
    assert (
        admin_client.post(f"/admin/notifications/notification/{row.pk}/change/", {"status": "sent"}).status_code == 403
    )
    row.refresh_from_db()
    assert row.status == "failed"


def test_the_lists_actions_still_retry_rows(admin_client, row):
    response = admin_client.post(
        "/admin/notifications/notification/", {"action": "retry_selected", "_selected_action": [row.pk]}
    )

    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == "pending"


def test_a_notification_shows_what_the_patient_saw(admin_client, row):
    Notification.objects.filter(pk=row.pk).update(rendered_html="<p>Hello <b>Grace</b></p>")

    page = admin_client.get(f"/admin/notifications/notification/{row.pk}/change/").content.decode()

    assert '<iframe sandbox="" srcdoc="&lt;p&gt;Hello &lt;b&gt;Grace&lt;/b&gt;&lt;/p&gt;"' in page


def test_an_inbound_message_is_a_record_without_save_buttons(admin_client, row):
    message = InboundMessage.objects.create(
        patient=row.patient, channel="sms", from_number="+14155550123", body="C", message_sid="SM1", action="confirmed"
    )

    page = admin_client.get(f"/admin/notifications/inboundmessage/{message.pk}/change/")
    listing = admin_client.get("/admin/notifications/inboundmessage/").content.decode()

    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert "+…0123" in listing and "+14155550123" not in listing


def test_the_template_editor_starts_with_a_hint_not_an_error(admin_client):
    page = admin_client.get("/admin/notifications/messagetemplate/add/").content.decode()

    assert '<p id="preview-hint" class="help">Choose a channel, a kind and a language' in page
    assert '<p id="preview-errors" hidden></p>' in page
    # The script previews (and so finds fault) only once the template's key is chosen.
    assert 'hint.hidden = Boolean(channel && value("kind") && value("language"));' in page


def test_a_patients_page_links_to_their_story(admin_client, row):
    page = admin_client.get(f"/admin/appointments/patient/{row.patient_id}/change/").content.decode()

    assert f'<a href="/admin/console/patients/{row.patient_id}/">Story</a>' in page
