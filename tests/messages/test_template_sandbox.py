"""A template that is saved can be sent (issue 28, item 4): the clinic's templates compile in a
sandbox that has only the tags and filters a message needs, every part is rendered with sample
data in every language at save and at preview, and anything that would fail, or put out what a
channel cannot carry, is a 400 naming the part (and the line). The preview never answers 500."""

import pytest

from notifications.models import MessageTemplate

MISSING_INCLUDE = '{% include "no/such/file.txt" %}'
ADMIN_LOG = "{% load log %}{% get_admin_log 5 as entries %}{{ date }}"


def create(client, channel="email", **parts):
    body = {"channel": channel, "kind": "booking_confirmation", "language": "en", **parts}
    return client.post("/api/templates/", body, format="json")


def preview(client, channel="email", **fields):
    body = {"channel": channel, "kind": "booking_confirmation", "language": "en", **fields}
    return client.post("/api/templates/preview/", body, format="json")


REFUSED = [
    pytest.param("email", {"text": MISSING_INCLUDE}, "text", "include", id="email-include"),
    pytest.param("sms", {"text": MISSING_INCLUDE}, "text", "include", id="sms-include"),
    pytest.param("email", {"html": '{% extends "email/base.html" %}'}, "html", "extends", id="extends"),
    pytest.param("email", {"text": ADMIN_LOG}, "text", "log", id="load-log"),
    pytest.param("email", {"text": "{% load static %}{% static 'x.png' %}"}, "text", "static", id="load-static"),
    pytest.param("sms", {"text": "{{ date }}{% debug %}"}, "text", "debug", id="debug"),
    pytest.param("email", {"html": "{{ patient_name|safe }}"}, "html", "safe", id="safe-filter"),
    pytest.param(
        "sms", {"text": "Hello\n{{ duration_minutes|divisibleby:0 }}"}, "text", "line 2", id="render-error-line"
    ),
    pytest.param("sms", {"text": "{% for x in duration_minutes %}{{ x }}{% endfor %}"}, "text", "render", id="for"),
    pytest.param("sms", {"text": "Hello\x00{{ date }}"}, "text", "character", id="nul"),
    pytest.param("sms", {"text": "Hello\x07{{ date }}"}, "text", "control character", id="bell"),
    pytest.param("email", {"subject": "\x1b[31m{{ date }}"}, "subject", "control character", id="escape"),
    pytest.param(
        "sms",
        {"text": '{% if language == "es" %}{{ duration_minutes|divisibleby:0 }}{% endif %}{{ date }}'},
        "text",
        "es",
        id="fails-in-another-language",
    ),
]


@pytest.mark.parametrize(("channel", "parts", "part", "words"), REFUSED)
def test_a_template_that_cannot_be_sent_is_refused_at_save_naming_the_part(staff_client, channel, parts, part, words):
    response = create(staff_client, channel, **parts)

    assert response.status_code == 400, response.content
    assert list(response.json()) == [part]
    assert words in " ".join(response.json()[part]), response.json()
    assert not MessageTemplate.objects.exists()


@pytest.mark.parametrize(("channel", "parts", "part", "words"), REFUSED)
def test_the_preview_answers_400_naming_the_part_never_500(staff_client, channel, parts, part, words):
    response = preview(staff_client, channel, **parts)

    assert response.status_code == 400, response.content
    assert words in " ".join(response.json()[part]), response.json()


def test_the_preview_with_an_appointment_renders_it_too(staff_client, book):
    appointment = book()
    text = "{% if provider == 'Dr. Ada Lovelace' %}{{ duration_minutes|divisibleby:0 }}{% endif %}{{ date }}"

    sample_only = preview(staff_client, "sms", text=text.replace("Dr. Ada Lovelace", "Dr. Nobody"))
    with_it = preview(staff_client, "sms", text=text, appointment=appointment.pk)

    assert sample_only.status_code == 200
    assert (with_it.status_code, list(with_it.json())) == (400, ["text"])


def test_what_a_message_needs_is_allowed(staff_client):
    text = (
        "{% load i18n %}{% blocktranslate %}Hello {{ patient_name }}{% endblocktranslate %}\n"
        "{% if location %}{{ location|upper }}{% else %}{% trans 'the clinic' %}{% endif %}\t"
        "{% with when=date %}{{ when }} {{ time|default:'' }}{% endwith %}"
        "{% for word in 'ab' %}{{ forloop.counter }}{% endfor %}{# a comment #}"
    )

    response = create(
        staff_client, "email", subject="{{ clinic_name }}: {{ date }}", text=text, html="<p>{{ date }}</p>"
    )

    assert response.status_code == 201, response.content
