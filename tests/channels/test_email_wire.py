"""The bytes our SMTP backend puts on the wire for the email channel's messages
(notifications/channels/mime.py), parsed back as a mail client would: they say what Django's
own MIME message for the same email says, in 7-bit CRLF lines."""

import email
import email.policy
import re

import pytest
from django.core.mail import BadHeaderError
from django.core.mail.message import sanitize_address
from hypothesis import example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from notifications.channels import Message, mime
from notifications.channels.email import email_message

CALENDAR = (
    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nPRODID:-//Appointment notifications//EN\r\nVERSION:2.0\r\n"
    "BEGIN:VEVENT\r\nUID:appointment-7@clinic.example\r\nSEQUENCE:0\r\n"
    "DTSTART;TZID=Europe/Madrid:20310304T100000\r\nSUMMARY:Cita con Dra. Ana Torres\r\n"
    "LOCATION:Clínica Calle Mayor\\, sala 2\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
ENGLISH = Message(
    subject="Reminder: your appointment with Dr. Rivera on Thursday 3 December 2026",
    text="Dear Grace Hopper,\n\nThis is a reminder of your appointment with Dr. Rivera at 10:00.\n",
    html="<p>Dear Grace Hopper,</p>\n<p>This is a reminder of your appointment with Dr. Rivera.</p>",
)
MESSAGES = {
    "english-reminder": ENGLISH,
    "spanish-reminder": Message(
        subject="Recordatorio: su cita con la Dra. Muñoz, el jueves 3 de diciembre",
        text="Estimada Señora Núñez:\n\nLe recordamos su cita con la Dra. Muñoz… ¿Nos vemos?\n",
        html="<p>Estimada Señora Núñez:</p>\n<p>Le recordamos su cita con la Dra. Muñoz.</p>",
    ),
    "long-subject": Message(
        subject="Reminder: " + " ".join(["your appointment with Dr. Rivera on Thursday"] * 6),
        text=ENGLISH.text,
        html=ENGLISH.html,
    ),
    "long-spanish-subject": Message(subject="Confirmación de su cita " * 12, text="¡Hola!", html="<p>¡Hola!</p>"),
    "line-over-998": Message(subject="Reminder", text="Notes: " + "x" * 1200 + "\nEnd.", html=ENGLISH.html),
    "calendar-invitation": Message(
        subject="Cita confirmada", text="Su cita.", html="<p>Su cita.</p>", calendar=CALENDAR, calendar_method="REQUEST"
    ),
    "text-only": Message(subject="Reminder", text=ENGLISH.text),
    "windows-line-endings": Message(subject="Reminder", text="First line\r\nsecond line\r\n", html="<p>\r\n</p>"),
}


def sent_email(message, recipient="grace@example.com"):
    return email_message(recipient, message, "<20261201.abc@clinic.example>")


def wire(django_email):
    return mime.envelope_and_bytes(django_email)[2]


def parsed(raw):
    """What a mail client reads in a message: its headers and, part by part, type, charset,
    parameters and decoded text."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = list(message.iter_parts()) if message.is_multipart() else [message]
    return {
        "headers": {name: str(message[name]) for name in ("From", "To", "Message-ID", "MIME-Version")},
        "type": message.get_content_type(),
        "parts": [
            (part.get_content_type(), part.get_content_charset(), dict(part["Content-Type"].params), part.get_content())
            for part in parts
        ],
        "defects": [list(part.defects) for part in message.walk()],
    }


def djangos(django_email):
    return django_email.message().as_bytes(linesep="\r\n")


@pytest.mark.parametrize("message", MESSAGES.values(), ids=MESSAGES.keys())
def test_the_wire_says_what_djangos_message_says(message):
    sent = sent_email(message)

    raw = wire(sent)

    assert parsed(raw) == parsed(djangos(sent))
    assert email.message_from_bytes(raw, policy=email.policy.default)["Subject"] == message.subject


@pytest.mark.parametrize("message", MESSAGES.values(), ids=MESSAGES.keys())
def test_the_wire_is_7bit_in_crlf_lines_of_at_most_78_characters(message):
    raw = wire(sent_email(message))

    assert raw.isascii()
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", raw) is None
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


def test_a_from_name_not_in_ascii_reads_as_djangos(settings):
    settings.DEFAULT_FROM_EMAIL = "Clínica Ñandú <citas@clinic.example>"
    sent = sent_email(ENGLISH)

    raw = wire(sent)

    assert parsed(raw) == parsed(djangos(sent))
    assert email.message_from_bytes(raw, policy=email.policy.default)["From"] == settings.DEFAULT_FROM_EMAIL


@pytest.mark.parametrize("recipient", ["grace@example.com", "paciente@clínica.example"], ids=["ascii", "idn"])
def test_envelope_is_the_addresses_django_sends_to(settings, recipient):
    settings.DEFAULT_FROM_EMAIL = "Clínica <citas@clinic.example>"

    sender, recipients, raw = mime.envelope_and_bytes(sent_email(ENGLISH, recipient=recipient))

    assert sender == sanitize_address(settings.DEFAULT_FROM_EMAIL, "utf-8")
    assert recipients == [sanitize_address(recipient, "utf-8")]
    assert email.message_from_bytes(raw)["To"] == recipients[0]


def test_a_subject_with_a_newline_is_refused_as_django_refuses_it():
    with pytest.raises(BadHeaderError):
        wire(sent_email(Message(subject="Reminder\nBcc: victim@example.com", text="Hello")))


def test_a_recipient_address_django_cannot_parse_is_refused_as_django_refuses_it():
    with pytest.raises(ValueError, match="Invalid address"):
        wire(sent_email(ENGLISH, recipient="grace@example.com, other@example.com"))


@hsettings(max_examples=300, deadline=None, derandomize=True)
@example(subject=" leading space", text="")
@example(subject="=?utf-8?q?looks_encoded?=", text=".\nFrom here\n")
@example(subject="Trailing space ", text="trailing space \n\ttab\t\nx" * 100)
@given(subject=st.text(st.characters(blacklist_characters="\r\n")), text=st.text())
def test_any_subject_and_text_parse_back_as_given(subject, text):
    raw = wire(sent_email(Message(subject=subject, text=text, html="<p>x</p>")))

    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == subject
    assert lines(message.get_body(("plain",)).get_content()) == lines(text)


def lines(text):
    """The text with its line endings as a mail client shows them: the wire's are CRLF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
