"""Turns a row into the message its channel sends, with Django's templates, in the patient's
language.

A message part (an email's subject, text or HTML; a text message's text) comes from the
clinic's own template for its channel, kind and language when staff saved one (the database,
notifications/messages/catalog.py), else from a file: first under templates/notifications/ (the
clinic's file overrides), then the file shipped in templates/. Files are translated with
gettext (locale/); a sentence a language has no translation of stays in the default language.
The wording is taken when the row is sent, not when it was planned."""

import functools
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.dispatch import receiver
from django.template import Context, engines
from django.template.loader import select_template
from django.utils import dateformat, translation
from django.utils.autoreload import file_changed
from django.utils.translation import pgettext

from appointments.links import link_for
from notifications.channels import DeliveryError, Message
from notifications.channels.choices import Channel
from notifications.messages.catalog import clinic_identity, stored_templates
from notifications.messages.invitations import invitation
from notifications.messages.kinds import NotificationKind
from notifications.messages.languages import message_language

TEXT_LIMIT = 1600  # Twilio refuses longer bodies
# The numbered variables of the clinic's WhatsApp Content Templates (DESIGN.md, contract).
CONTENT_VARIABLES = ("patient_name", "date", "time", "provider", "location", "clinic_name")
# Characters no channel carries (nor PostgreSQL stores): NUL, and lone surrogates (not UTF-8,
# so no email or request can even be encoded). A template that compiles and names only known
# variables can still render one (`{{ 0|stringformat:"c" }}`). Other control characters pass:
# a patient's name holding one must not cost them every message.
UNSENDABLE = re.compile("[\x00\ud800-\udfff]")


class UnsendableMessage(DeliveryError):
    """A rendered message holding a character no channel carries: sending it again renders it
    again, so the row dies at once (code `internal`), with the part and the character named."""

    def __init__(self, message):
        super().__init__(message, permanent=True, code="internal")


def template_names(channel, kind):
    """The templates a message of this channel and kind needs, by part."""
    if channel == Channel.EMAIL:
        return {"subject": f"email/{kind}_subject.txt", "text": f"email/{kind}.txt", "html": f"email/{kind}.html"}
    return {"text": f"{channel}/{kind}.txt"}


def candidates(name):
    return [f"notifications/{name}", name]


def all_template_names():
    for channel in Channel.values:
        for kind in NotificationKind.values:
            yield from template_names(channel, kind).values()


def render(notification):
    """The message of a row, in the language it was planned in."""
    language = message_language(notification.context)
    stored = stored_templates(notification.channel, notification.kind, language)
    with translation.override(language):
        context = message_context(notification.context, language) | clinic_identity()
        link = link_for(notification.appointment_id) if link_wanted(notification.channel, notification.kind) else ""
        parts = render_parts(notification.channel, notification.kind, context | {"action_url": link}, stored)
    if link and notification.channel == Channel.SMS:
        parts["text"] = with_link(parts["text"], link)
    calendar = invitation(notification) if notification.channel == Channel.EMAIL else None
    if calendar:
        parts["calendar_method"], parts["calendar"] = calendar
    if notification.channel == Channel.WHATSAPP:
        parts["variables"] = {str(n): str(context.get(name, "")) for n, name in enumerate(CONTENT_VARIABLES, 1)}
    refuse_unsendable(parts, f"{notification.channel} {notification.kind} in {language!r}")
    return Message(**parts)


def link_wanted(channel, kind):
    """Whether a message carries the appointment's link: every email, and text messages where
    the clinic turns it on (not a cancellation: nothing is left to confirm or cancel)."""
    if channel == Channel.EMAIL:
        return True
    return settings.NOTIFICATIONS_SMS_LINKS and channel == Channel.SMS and kind != NotificationKind.CANCELLATION


def with_link(text, url):
    """A text message with the appointment's link as its last line, shortening the words (never
    the link) to stay within TEXT_LIMIT. The link is plain ASCII of GSM-7's alphabet: it adds
    about one segment and never turns the message into UCS-2."""
    budget = TEXT_LIMIT - len(url) - 1
    if len(text) > budget:
        text = text[: budget - 1] + "…"
    return f"{text}\n{url}"


def refuse_unsendable(parts, which):
    """Raise UnsendableMessage when a rendered part holds a character no channel carries."""
    texts = {name: value for name, value in parts.items() if isinstance(value, str)}
    texts |= {f"variable {n}": value for n, value in parts.get("variables", {}).items()}
    for name, value in texts.items():
        found = UNSENDABLE.search(value)
        if found:
            raise UnsendableMessage(
                f"the {which} message renders U+{ord(found.group()):04X} in its {name}, which no channel carries: "
                "check the clinic's template for it"
            )


def may_carry_reason(channel, part):
    """Minimum necessary: the appointment's reason goes only in an email's body, and only when the
    clinic turns NOTIFICATIONS_SHOW_REASON on; a subject or a text message is read by anyone who
    sees the screen."""
    return settings.NOTIFICATIONS_SHOW_REASON and channel == Channel.EMAIL and part in ("text", "html")


def render_parts(channel, kind, context, stored):
    parts = {}
    for part, name in template_names(channel, kind).items():
        template = stored.get(part) or _file_template(engines["django"], name)
        values = context if may_carry_reason(channel, part) else {**context, "reason": ""}
        # Only the HTML part is HTML: the text parts take their values as they are, unescaped.
        parts[part] = template.template.render(Context(values, autoescape=part == "html")).strip()
    if "subject" in parts:
        parts["subject"] = " ".join(parts["subject"].split())
    if channel != Channel.EMAIL and len(parts["text"]) > TEXT_LIMIT:
        parts["text"] = parts["text"][: TEXT_LIMIT - 1] + "…"
    return parts


@functools.lru_cache(maxsize=256)
def _file_template(engine, name):
    """A part's template file (the clinic's override, else ours), looked up once per template
    engine: the lookup, a miss first for a part with no override, cost a sixth of rendering. A
    changed TEMPLATES setting makes a new engine; a file changed under runserver's autoreloader
    clears these, as it resets Django's own loaders."""
    return select_template(candidates(name), using=engine.name)


@receiver(file_changed, dispatch_uid="notifications.messages.rendering")
def _forget_file_templates(**kwargs):
    _file_template.cache_clear()


def message_context(snapshot, language=None):
    """The template context: the planning snapshot with its times in the patient's zone and
    language."""
    zone = snapshot.get("timezone") or "UTC"
    language = language or message_language(snapshot)
    context = dict(snapshot)
    for field in ("starts_at", "previous_starts_at"):
        if snapshot.get(field):
            prefix = "" if field == "starts_at" else "previous_"
            context[f"{prefix}date"], context[f"{prefix}time"] = local_date_and_time(snapshot[field], zone, language)
    return context


@functools.lru_cache(maxsize=4096)
def local_date_and_time(iso_time, zone, language):
    """A time as the patient reads it, in their zone and language. Cached: the rows of one
    appointment, and a sweep's many rows, share a few times, and formatting them (translated
    day and month names) costs more than rendering the templates."""
    local = datetime.fromisoformat(iso_time).astimezone(ZoneInfo(zone))
    with translation.override(language):
        # Each language orders its dates its own way: the format itself is translated.
        date_format = pgettext("date in a message (Django date format)", "l j F Y")
        time_format = pgettext("time in a message (Django date format)", "H:i T")
        return dateformat.format(local, date_format), dateformat.format(local, time_format)
