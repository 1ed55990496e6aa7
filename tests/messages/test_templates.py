"""Rendering: the patient's time zone, escaping by part, clinic overrides, the text length
limit, and the start-up check for missing templates."""

import shutil
from datetime import UTC, datetime, timedelta

from django.conf import settings as django_settings
from django.core import checks, mail

from appointments import services
from notifications.messages.rendering import TEXT_LIMIT, render
from notifications.models import Notification
from notifications.operations.checks import notification_templates_exist
from notifications.outbox.delivery import send_notification

TEMPLATES_DIR = django_settings.BASE_DIR / "templates"


def templates_setting(*dirs, app_dirs=True):
    return [{**django_settings.TEMPLATES[0], "DIRS": [*dirs], "APP_DIRS": app_dirs}]


def row(appointment, channel, kind="booking_confirmation"):
    return Notification.objects.get(appointment=appointment, kind=kind, channel=channel)


def test_rendering_uses_the_patients_time_zone(make_patient):
    starts_at = datetime(2031, 1, 15, 3, 30, tzinfo=UTC)
    new_york = services.book(
        patient=make_patient(channels=["sms"], timezone="America/New_York"),
        provider="Dr. Ada Lovelace",
        starts_at=starts_at,
        duration_minutes=30,
    )
    london = services.book(
        patient=make_patient(channels=["sms"], timezone="Europe/London"),
        provider="Dr. Ada Lovelace",
        starts_at=starts_at,
        duration_minutes=30,
    )

    new_york_text = render(row(new_york, "sms")).text
    london_text = render(row(london, "sms")).text

    assert "Tuesday 14 January 2031 at 22:30 EST" in new_york_text
    assert "Wednesday 15 January 2031 at 03:30 GMT" in london_text


def test_html_part_escapes_names_and_reasons_but_sms_text_is_not_entity_escaped(book, make_patient, twilio, settings):
    settings.NOTIFICATIONS_SHOW_REASON = True  # the reason shown (off by default), to see it escaped
    patient = make_patient(channels=["email", "sms"], name="<script>alert('name')</script>")
    appointment = book(
        patient,
        provider="Dr. O'Brien & <Partners>",
        reason="<script>alert('reason')</script>",
        location="Room <4> & 5",
    )

    send_notification(row(appointment, "email").pk)
    send_notification(row(appointment, "sms").pk)

    (email,) = mail.outbox
    html = email.alternatives[0][0]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(&#x27;reason&#x27;)&lt;/script&gt;" in html
    assert "Dr. O&#x27;Brien &amp; &lt;Partners&gt;" in html
    # The plain parts are not HTML: the values go in as written.
    assert "Dr. O'Brien & <Partners>" in email.subject
    assert "Dear <script>alert('name')</script>," in email.body
    (sms,) = twilio.requests
    assert "Dr. O'Brien & <Partners>" in sms.body
    assert "Room <4> & 5" in sms.body
    assert "&amp;" not in sms.body and "&lt;" not in sms.body and "&#x27;" not in sms.body


def test_override_under_notifications_email_wins(book, tmp_path, settings):
    override = tmp_path / "notifications" / "email"
    override.mkdir(parents=True)
    (override / "booking_confirmation_subject.txt").write_text("Clinic override: see {{ provider }} soon\n")
    (override / "booking_confirmation.html").write_text("<p>Override HTML for {{ patient_name }}</p>\n")
    settings.TEMPLATES = templates_setting(tmp_path, TEMPLATES_DIR)
    appointment = book()

    send_notification(row(appointment, "email").pk)

    (email,) = mail.outbox
    assert email.subject == "Clinic override: see Dr. Ada Lovelace soon"
    assert email.alternatives[0][0] == f"<p>Override HTML for {appointment.patient.name}</p>"
    # Parts without an override keep the shipped template.
    assert email.body.startswith(f"Dear {appointment.patient.name},")


def test_sms_text_longer_than_1600_is_cut_to_1600(book, make_patient, twilio):
    appointment = book(make_patient(channels=["email", "sms"]))
    sms, email = row(appointment, "sms"), row(appointment, "email")
    # The snapshot is where a long value would come from; a location of 2000 characters.
    for notification in (sms, email):
        notification.context = {**notification.context, "location": "L" * 2000}
        notification.save(update_fields=["context"])

    assert len(render(sms).text) == TEXT_LIMIT == 1600
    send_notification(sms.pk)

    (request,) = twilio.requests
    assert len(request.body) == 1600
    assert request.body.endswith("…")
    assert request.body.startswith(django_settings.CLINIC_NAME)
    # Email has no such limit.
    assert len(render(email).text) > 2000


def test_missing_template_is_reported_by_check_E001(tmp_path, settings):
    shutil.copytree(TEMPLATES_DIR, tmp_path / "templates")
    (tmp_path / "templates" / "sms" / "reminder.txt").unlink()
    assert notification_templates_exist(None) == []

    settings.TEMPLATES = templates_setting(tmp_path / "templates", app_dirs=False)
    errors = notification_templates_exist(None)

    assert [error.id for error in errors] == ["notifications.E001"]
    assert "sms/reminder.txt" in errors[0].msg
    assert errors[0].level == checks.ERROR
    assert "notifications.E001" in {message.id for message in checks.run_checks(tags=[checks.Tags.templates])}


def test_override_found_when_shipped_template_is_missing_passes_the_check(tmp_path, settings):
    shutil.copytree(TEMPLATES_DIR, tmp_path / "templates")
    (tmp_path / "templates" / "sms" / "reminder.txt").rename(tmp_path / "reminder.txt")
    (tmp_path / "templates" / "notifications" / "sms").mkdir()
    (tmp_path / "reminder.txt").rename(tmp_path / "templates" / "notifications" / "sms" / "reminder.txt")
    settings.TEMPLATES = templates_setting(tmp_path / "templates", app_dirs=False)

    assert notification_templates_exist(None) == []


def test_reschedule_notice_names_the_old_and_new_times_in_the_patients_zone(make_patient):
    first = datetime(2031, 7, 1, 8, 0, tzinfo=UTC)
    appointment = services.book(
        patient=make_patient(channels=["email"], timezone="America/New_York"),
        provider="Dr. Ada Lovelace",
        starts_at=first,
        duration_minutes=30,
    )
    services.reschedule(appointment.pk, starts_at=first + timedelta(days=1, hours=2))

    message = render(row(appointment, "email", kind="reschedule"))

    assert "on Tuesday 1 July 2031 at 04:00 EDT has moved to Wednesday 2 July 2031 at 06:00 EDT" in message.text
    assert "from Tuesday 1 July 2031 at 04:00 EDT" in message.html
    assert message.subject == "Your appointment with Dr. Ada Lovelace has moved to Wednesday 2 July 2031"
