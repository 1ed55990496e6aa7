"""Messages in the patient's language: Spanish complete for every kind and channel, dates in
the language's own words and order, and the default language wherever a translation is missing."""

import gettext
import re

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.template.loader import render_to_string
from django.utils import translation

from notifications.messages.preview import render_preview, sample_snapshot
from notifications.messages.rendering import local_date_and_time, message_context, render
from notifications.models import Channel, Notification, NotificationKind
from tests.conftest import settled

LOCALE_DIR = django_settings.BASE_DIR / "locale"
# Words of the English templates that a Spanish message must not contain.
ENGLISH_WORDS = re.compile(
    r"\b(your|appointment|dear|reminder|booked|cancelled|moved|reason|provider|date|time)\b", re.I
)


def po_entries(path):
    """(msgctxt, msgid) -> msgstr of a .po file, header left out."""
    entries, current, field = {}, {}, None
    for line in [*path.read_text().splitlines(), ""]:
        keyword = re.match(r'^(msgctxt|msgid|msgstr) "(.*)"$', line)
        if keyword:
            if keyword[1] == "msgctxt" or (keyword[1] == "msgid" and "msgctxt" not in current):
                if "msgstr" in current:
                    current = {}
            field = keyword[1]
            current[field] = keyword[2]
        elif line.startswith('"') and field:
            current[field] += line[1:-1]
        elif not line.strip() and "msgstr" in current:
            if current["msgid"]:
                unescape = lambda text: text.encode().decode("unicode_escape").encode("latin-1").decode()  # noqa: E731
                entries[(current.get("msgctxt"), unescape(current["msgid"]))] = unescape(current["msgstr"])
            current, field = {}, None
    return entries


def test_every_spanish_sentence_is_translated_and_compiled_into_the_committed_catalog():
    po = LOCALE_DIR / "es" / "LC_MESSAGES" / "django.po"
    entries = po_entries(po)
    catalog = gettext.GNUTranslations(po.with_suffix(".mo").open("rb"))

    assert len(entries) > 20
    assert [msgid for (_, msgid), msgstr in entries.items() if not msgstr] == []
    for (context, msgid), msgstr in entries.items():
        compiled = catalog.pgettext(context, msgid) if context else catalog.gettext(msgid)
        assert compiled == msgstr, f"locale/es/LC_MESSAGES/django.mo is older than its .po for {msgid!r}"


@pytest.mark.parametrize("kind", NotificationKind.values)
@pytest.mark.parametrize("channel", Channel.values)
def test_spanish_message_is_complete_for_every_kind_and_channel(channel, kind):
    message = render_preview(channel, kind, "es", {})

    parts = {part: message[part] for part in ("subject", "text", "html") if message[part]}
    assert set(parts) == ({"subject", "text", "html"} if channel == Channel.EMAIL else {"text"})
    for part, text in parts.items():
        assert "martes 8 de diciembre de 2026" in text, part
        # Names and places are the patient's own; every other word is Spanish.
        words = text.replace("Dr. Ada Lovelace", "").replace("Room 4, Main Street Clinic", "").replace("Check-up", "")
        assert not ENGLISH_WORDS.findall(re.sub(r"<[^>]+>", " ", words)), (part, text)


def test_dates_and_weekdays_are_written_in_the_patients_language_and_zone():
    starts_at = "2026-12-08T08:30:00+00:00"

    assert local_date_and_time(starts_at, "Europe/Madrid", "es") == ("martes 8 de diciembre de 2026", "09:30 CET")
    assert local_date_and_time(starts_at, "America/New_York", "en") == ("Tuesday 8 December 2026", "03:30 EST")
    context = message_context(sample_snapshot("es"))
    assert (context["date"], context["time"]) == ("martes 8 de diciembre de 2026", "09:30 CET")


def test_spanish_patient_booked_through_the_api_hears_in_spanish_on_every_channel(
    celery_worker, staff_client, twilio, clinic, settings
):
    settings.BOOKING_MAX_DAYS_AHEAD = 10 * 365  # the fixed date below, whatever year the suite runs in
    settings.SMS_ALLOWED_COUNTRIES = ["1", "34"]  # a clinic that texts Spain too
    patient = staff_client.post(
        "/api/patients/",
        {
            "name": "Lucía Pérez",
            "email": "lucia@example.com",
            "phone": "+34600000001",
            "timezone": "Europe/Madrid",
            "language": "es",
            "channels": ["email", "sms", "in_app"],
        },
        format="json",
    )
    assert patient.status_code == 201, patient.data
    assert patient.data["language"] == "es"
    booked = staff_client.post(
        "/api/appointments/",
        {
            "patient": patient.data["id"],
            "provider": "Dra. Ana Torres",
            "starts_at": "2031-12-09T09:00:00+00:00",
            "duration_minutes": 30,
            "location": "Sala 2",
        },
        format="json",
    )
    assert booked.status_code == 201, booked.data

    rows = settled(Notification.objects.filter(appointment_id=booked.data["id"], kind="booking_confirmation"))

    assert {row.status for row in rows} == {"sent"}
    (email,) = mail.outbox
    assert email.subject == "Su cita con Dra. Ana Torres del martes 9 de diciembre de 2031 está confirmada"
    assert email.body.startswith("Hola, Lucía Pérez:")
    (sms,) = twilio.requests
    assert sms.body == (
        "The Clinic: su cita con Dra. Ana Torres queda reservada para el martes 9 de diciembre de 2031 "
        "a las 10:00 CET, Sala 2."
    )
    # Each row keeps what it said, and the patient's notification list shows it.
    listed = staff_client.get(f"/api/appointments/{booked.data['id']}/notifications/").data["results"]
    sent = {row["channel"]: row for row in listed if row["kind"] == "booking_confirmation"}
    assert sent["sms"]["text"] == sms.body
    assert (sent["email"]["subject"], sent["email"]["text"]) == (email.subject, email.body)


def test_patient_language_must_be_one_the_service_offers(staff_client):
    response = staff_client.post(
        "/api/patients/",
        {"name": "Zoé", "email": "zoe@example.com", "timezone": "UTC", "language": "fr", "channels": ["email"]},
        format="json",
    )

    assert response.status_code == 400
    assert "language" in response.data and "'fr' is not one of en, es." in response.data["language"][0]


def test_patients_get_the_default_language_when_none_is_given(staff_client):
    response = staff_client.post(
        "/api/patients/",
        {"name": "Ann", "email": "ann@example.com", "timezone": "UTC", "channels": ["email"]},
        format="json",
    )

    assert response.status_code == 201
    assert response.data["language"] == "en"


def test_a_language_without_translations_keeps_the_default_wording_with_its_own_dates(settings):
    settings.LANGUAGES = [*settings.LANGUAGES, ("fr", "Français")]

    text = render_preview(Channel.SMS, NotificationKind.REMINDER, "fr", {})["text"]

    assert text == (
        "The Clinic reminder: appointment with Dr. Ada Lovelace on mardi 8 décembre 2026 at 09:30 CET, "
        "Room 4, Main Street Clinic."
    )


def test_a_row_in_a_language_no_longer_offered_is_written_in_the_default_language(book, make_patient):
    appointment = book(make_patient(channels=["sms"], language="es"))
    row = appointment.notifications.get(kind="booking_confirmation")
    assert render(row).text.startswith("The Clinic: su cita")
    row.context = {**row.context, "language": "de"}

    assert render(row).text.startswith("The Clinic: your appointment with Dr. Ada Lovelace is booked for")


@pytest.mark.parametrize("kind", NotificationKind.values)
@pytest.mark.parametrize("language", ["en", "es"])
def test_shipped_sms_wording_fits_the_segment_limit_in_every_language(language, kind):
    preview = render_preview(Channel.SMS, kind, language, {})

    assert preview["segments"] <= django_settings.NOTIFICATIONS_SMS_MAX_SEGMENTS


REPLIES = sorted(path.stem for path in (django_settings.BASE_DIR / "templates" / "replies").glob("*.txt"))


@pytest.mark.parametrize("reply", REPLIES)
def test_answers_to_a_spanish_patients_reply_are_spanish(reply):
    snapshot = message_context(sample_snapshot("es"), "es")
    with translation.override("es"):
        text = " ".join(render_to_string(f"replies/{reply}.txt", snapshot).split())

    assert not ENGLISH_WORDS.findall(text.replace("Dr. Ada Lovelace", "")), text
