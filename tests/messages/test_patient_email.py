"""The email a patient gets from their clinic: the clinic's identity as staff keep it (the admin's
Clinic record), the date and time as the headline in the patient's zone, Confirm and Cancel
linking to the appointment's page, a footer saying how to change channels or stop emails, and
a text part that says the same. Text messages carry the link only where the clinic turns it on."""

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from appointments.links import link_for
from appointments.models import Clinic
from notifications.messages.rendering import TEXT_LIMIT, render, with_link
from notifications.messages.segments import count_segments
from notifications.models import Notification


def row_of(appointment, channel="email", kind="booking_confirmation"):
    return Notification.objects.select_related("patient", "appointment").get(
        appointment=appointment, channel=channel, kind=kind
    )


@pytest.fixture
def harbour_clinic(db):
    return Clinic.objects.create(
        name="Harbour Family Practice",
        phone="+44 20 7946 0000",
        address="1 Quay Street\nBristol BS1 4DJ",
        logo_url="https://clinic.example/logo.png",
    )


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


def test_the_confirmation_carries_the_clinic_the_headline_the_buttons_and_the_footer(
    harbour_clinic, book, make_patient, settings
):
    settings.SITE_URL = "https://clinic.example"
    patient = make_patient(channels=["email"], timezone="America/New_York")
    starts_at = (timezone.now() + timedelta(days=8)).replace(hour=15, minute=30, second=0, microsecond=0)
    appointment = book(patient, starts_in=starts_at - timezone.now())

    message = render(row_of(appointment))

    link = link_for(appointment.pk)
    local = timezone.localtime(appointment.starts_at, timezone=__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert message.html.count(f'href="{link}"') == 2  # Confirm and Cancel
    assert link in message.text
    assert f">{local.strftime('%A')} {local.day} {local.strftime('%B %Y')}</h1>" in message.html
    assert local.strftime("%H:%M") in message.html and local.strftime("%H:%M") in message.text
    for part in (message.html, message.text):
        assert "Harbour Family Practice" in part
        assert "+44 20 7946 0000" in part
        assert "Quay Street" in part
        assert "to stop these emails, call us on +44 20 7946 0000" in part
    (logo,) = _images(message.html)
    assert (logo["src"], logo["alt"]) == ("https://clinic.example/logo.png", "Harbour Family Practice")
    assert '<html lang="en">' in message.html
    assert 'name="viewport"' in message.html
    assert message.calendar_method == "REQUEST"


def _images(html):
    parser = Images()
    parser.feed(html)
    return parser.images


def test_a_staff_edit_of_the_clinic_reaches_the_next_email(harbour_clinic, book, make_patient):
    row = row_of(book(make_patient(channels=["email"])))
    assert "Harbour Family Practice" in render(row).text

    harbour_clinic.name = "Harbour Health"
    harbour_clinic.save()

    assert "Harbour Health" in render(row).text


def test_without_a_clinic_record_the_email_names_clinic_name_and_says_contact_the_clinic(book, make_patient):
    message = render(row_of(book(make_patient(channels=["email"]))))

    assert "The Clinic" in message.text
    assert "contact the clinic" in message.text
    assert "<img" not in message.html


def test_spanish_email_buttons_and_footer_are_spanish(book, make_patient):
    message = render(row_of(book(make_patient(channels=["email"], language="es"))))

    assert '<html lang="es">' in message.html
    assert "Confirmar" in message.html and "Cancelar la cita" in message.html
    assert "Para confirmar o cancelar, abra la página de su cita:" in message.text


def test_a_cancellation_offers_no_buttons(book, make_patient):
    from appointments import services

    appointment = book(make_patient(channels=["email"]))
    services.cancel(appointment.pk)

    message = render(row_of(appointment, kind="cancellation"))

    assert link_for(appointment.pk) not in message.html
    assert "/a/" not in message.text
    assert message.calendar_method == "CANCEL"


def test_sms_carries_the_link_only_when_the_clinic_turns_it_on(book, make_patient, settings):
    settings.SITE_URL = "https://clinic.example"
    appointment = book(make_patient(channels=["sms"]))
    row = row_of(appointment, channel="sms")
    link = link_for(appointment.pk)

    assert link not in render(row).text

    settings.NOTIFICATIONS_SMS_LINKS = True
    text = render(row).text

    assert text.endswith("\n" + link)
    # The link is of GSM-7's alphabet: it adds characters, never turns the message into UCS-2.
    assert count_segments(text).encoding == count_segments(text.removesuffix(link)).encoding == "GSM-7"


def test_a_long_sms_is_shortened_before_its_link_never_through_it(book, settings):
    settings.SITE_URL = "https://clinic.example"
    link = link_for(book().pk)

    text = with_link("x" * TEXT_LIMIT, link)

    assert len(text) == TEXT_LIMIT
    assert text.endswith("x…\n" + link)


def test_staff_keep_the_clinic_as_one_record_in_the_admin(admin_client, book, make_patient):
    fields = {"name": "Quay Clinic", "phone": "+44 117 496 0000", "address": "2 Quay Street", "logo_url": ""}

    added = admin_client.post("/admin/appointments/clinic/add/", fields | {"website": ""})

    assert added.status_code == 302
    assert admin_client.get("/admin/appointments/clinic/add/").status_code == 403  # one clinic
    assert admin_client.post("/admin/appointments/clinic/1/delete/", {"post": "yes"}).status_code == 403
    assert "Quay Clinic" in render(row_of(book(make_patient(channels=["email"])))).html


def _luminance(hex_colour):
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a, b):
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_every_text_colour_of_the_email_reads_against_its_background_wcag_aa(book, make_patient):
    import re

    html = render(row_of(book(make_patient(channels=["email"])))).html
    text_colours = set(re.findall(r"(?<![-\w])color:#([0-9a-f]{6})", html))

    assert text_colours
    for colour in text_colours - {"ffffff"}:
        assert _contrast(colour, "ffffff") >= 4.5, colour
        assert _contrast(colour, "f4f6f8") >= 4.5, colour
    # White text sits only on the Confirm button's green.
    assert _contrast("ffffff", "0b5d1e") >= 4.5


def test_the_template_preview_counts_the_sms_link(staff_client, settings):
    body = {"channel": "sms", "kind": "reminder", "language": "en", "text": "{{ clinic_name }}: see you {{ date }}."}
    without = staff_client.post("/api/templates/preview/", body, format="json").data

    settings.NOTIFICATIONS_SMS_LINKS = True
    with_the_link = staff_client.post("/api/templates/preview/", body, format="json").data

    assert without["text"].startswith("The Clinic: see you")
    assert with_the_link["text"].startswith(without["text"] + "\n" + settings.SITE_URL + "/a/")
    assert with_the_link["characters"] > without["characters"] + 50
    email = staff_client.post("/api/templates/preview/", body | {"channel": "email"}, format="json").data
    assert email["html"].count(settings.SITE_URL + "/a/") == 2


@pytest.mark.parametrize("kind", ["booking_confirmation", "reminder", "reschedule", "cancellation"])
@pytest.mark.parametrize("language", ["en", "es"])
def test_shipped_sms_wording_with_its_link_fits_the_segment_limit(settings, language, kind):
    from notifications.messages.preview import render_preview

    settings.NOTIFICATIONS_SMS_LINKS = True
    settings.SITE_URL = "https://notifications.example-clinic.org"

    preview = render_preview("sms", kind, language, {})

    assert preview["segments"] <= settings.NOTIFICATIONS_SMS_MAX_SEGMENTS
