"""A patient's story (/admin/console/patients/<id>/): found by name, phone or email (contact masked
in the list); every message as the patient saw it, every attempt, receipt, reply and change, in
time order and in plain words; staff without the view permissions get 403."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from appointments.models import Appointment, ContactChange
from notifications.inbound.models import DeliveryReceipt, InboundMessage
from notifications.models import Notification, NotificationAttempt

SEARCH = "/admin/console/patients/"


def story_url(patient):
    return f"/admin/console/patients/{patient.pk}/"


@pytest.fixture
def grace(make_patient):
    return make_patient(name="Grace Hopper", email="grace@example.com", phone="+14155550123", channels=["sms"])


@pytest.fixture
def story(grace):
    """A booking whose SMS Twilio refused (not a mobile number), the email sent instead and read,
    a reply confirming, and a waiting change of phone: each at a known time."""
    start = timezone.now() - timedelta(days=2)
    at = lambda minutes: start + timedelta(minutes=minutes)  # noqa: E731
    appointment = Appointment.objects.create(
        patient=grace, provider="Dr. Ada Lovelace", starts_at=timezone.now() + timedelta(days=1)
    )
    # Booked at 0; confirmed by the reply at 6, the same instant.
    Appointment.objects.filter(pk=appointment.pk).update(created_at=at(0), confirmed_at=at(6))
    sms = Notification.objects.create(
        appointment=appointment,
        patient=grace,
        kind="booking_confirmation",
        channel="sms",
        status="failed",
        scheduled_for=at(1),
        recipient="+14155550123",
        attempts=1,
        died_at=at(2),
        error_code="21614",
        last_error="Twilio 400 error 21614: not a mobile number",
    )
    NotificationAttempt.objects.create(
        notification=sms, number=1, started_at=at(1), finished_at=at(2), outcome="failed", error_code="21614"
    )
    email = Notification.objects.create(
        appointment=appointment,
        patient=grace,
        kind="booking_confirmation",
        channel="email",
        status="sent",
        scheduled_for=at(3),
        sent_at=at(4),
        recipient="grace@example.com",
        fallback_for=sms,
        rendered_subject="Booked: Dr. Ada Lovelace",
        rendered_text="See you soon.",
        rendered_html="<p><b>See you soon</b> at the clinic.</p><script>alert(1)</script>",
    )
    NotificationAttempt.objects.create(
        notification=email, number=1, started_at=at(3), finished_at=at(4), outcome="sent"
    )
    DeliveryReceipt.objects.create(notification=email, message_sid="m1", status="delivered", received_at=at(5))
    InboundMessage.objects.create(
        patient=grace,
        channel="sms",
        from_number="+14155550123",
        body="C",
        message_sid="SM1",
        action="confirmed",
        appointment=appointment,
        received_at=at(6),
    )
    change = ContactChange.objects.create(
        patient=grace, field="phone", value="+447700900555", code_digest="x", expires_at=at(60)
    )
    ContactChange.objects.filter(pk=change.pk).update(created_at=at(7))
    return appointment


def test_search_by_name_phone_or_email_shows_contact_masked(admin_client, grace, make_patient):
    make_patient(name="Alan Turing", email="alan@example.com", phone="+447700900111")

    for query in ["grace", "555-0123", "GRACE@EXAMPLE", "hop"]:
        found = admin_client.get(SEARCH, {"q": query})
        assert [patient for patient, _ in found.context["found"]] == [grace], query

    page = admin_client.get(SEARCH, {"q": "grace"}).content.decode()
    assert "+…0123" in page and "g***@example.com" in page
    assert "+14155550123" not in page and "grace@example.com" not in page
    assert f'href="{story_url(grace)}"' in page


def test_the_story_in_time_order_and_plain_words(admin_client, grace, story):
    events = admin_client.get(story_url(grace)).context["events"]

    assert [event.words for event in events] == [
        f"Booked with Dr. Ada Lovelace for {story.starts_at:%Y-%m-%d %H:%M} UTC",
        "Booking confirmation by SMS to +…0123: gave up after 1 attempt(s)",
        "Attempt 1: Twilio: not a mobile number (21614); sent by email instead",
        "Booking confirmation by email to g***@example.com (instead of the SMS message that did not arrive): sent",
        "Attempt 1: email accepted it",
        "Receipt: delivered",
        "Replied by SMS: “C”, confirmed the appointment",
        f"Confirmed the appointment of {story.starts_at:%Y-%m-%d %H:%M} UTC",
        "Asked to change their phone to +…0555; waiting for the code sent there",
    ]


def test_an_email_is_shown_rendered_in_a_sandboxed_frame(admin_client, grace, story):
    page = admin_client.get(story_url(grace)).content.decode()

    assert '<iframe sandbox="" srcdoc="&lt;p&gt;&lt;b&gt;See you soon&lt;/b&gt; at the clinic.&lt;/p&gt;' in page
    assert "<script>alert(1)</script>" not in page
    assert "Subject: <strong>Booked: Dr. Ada Lovelace</strong>" in page


def test_a_text_message_is_shown_as_the_patient_read_it(admin_client, grace, story):
    Notification.objects.filter(channel="sms").update(status="sent", rendered_text="Booked: Tue 9:00 <Dr. Ada>")

    page = admin_client.get(story_url(grace)).content.decode()

    assert '<pre class="bubble">Booked: Tue 9:00 &lt;Dr. Ada&gt;</pre>' in page


def test_staff_edits_of_the_patient_are_in_the_story(admin_client, grace):
    admin_client.post(
        f"/admin/appointments/patient/{grace.pk}/change/",
        {
            "name": grace.name,
            "email": grace.email,
            "phone": grace.phone,
            "timezone": "UTC",
            "language": "en",
            "channels": ["sms", "email"],
            "opted_out": ["sms"],
            **INLINE_MANAGEMENT,
        },
    )

    words = [event.words for event in admin_client.get(story_url(grace)).context["events"]]

    assert any(w.startswith("Staff (admin): Changed") and "Opted out of" in w for w in words), words


INLINE_MANAGEMENT = {
    "inbound_messages-TOTAL_FORMS": "0",
    "inbound_messages-INITIAL_FORMS": "0",
    "inbound_messages-MIN_NUM_FORMS": "0",
    "inbound_messages-MAX_NUM_FORMS": "1000",
}


@pytest.mark.parametrize(
    "codenames, status",
    [
        ([], 403),
        (["view_patient"], 403),
        (["view_notification"], 403),
        (["view_patient", "view_notification"], 200),
    ],
)
def test_staff_need_the_view_permissions(client, django_user_model, grace, codenames, status):
    user = django_user_model.objects.create_user("desk", "desk@clinic.example", "pass-123-desk", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)

    assert client.get(story_url(grace)).status_code == status
    assert client.get(SEARCH, {"q": "grace"}).status_code == status


def test_patients_are_sent_to_sign_in(client, grace):
    response = client.get(story_url(grace))

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
