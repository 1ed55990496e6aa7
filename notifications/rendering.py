"""Turns a row into the message its channel sends, with Django's templates.

Every template is looked up first under notifications/ (the clinic's overrides) and then at
its plain path (the fallbacks shipped in templates/), as the seed did for email."""

import functools
from datetime import datetime
from zoneinfo import ZoneInfo

from django.template.loader import select_template
from django.utils import dateformat, translation
from django.utils.safestring import mark_safe

from .channels import Message
from .models import Channel, NotificationKind

TEXT_LIMIT = 1600  # Twilio refuses longer bodies


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
    context = message_context(notification.context)
    # Text parts are not HTML: their values go in unescaped. The HTML part escapes them.
    text_context = {key: mark_safe(value) if isinstance(value, str) else value for key, value in context.items()}
    parts = {}
    for part, name in template_names(notification.channel, notification.kind).items():
        template = select_template(candidates(name))
        parts[part] = template.render(context if part == "html" else text_context).strip()
    if "subject" in parts:
        parts["subject"] = " ".join(parts["subject"].split())
    if notification.channel != Channel.EMAIL and len(parts["text"]) > TEXT_LIMIT:
        parts["text"] = parts["text"][: TEXT_LIMIT - 1] + "…"
    return Message(**parts)


def message_context(snapshot):
    """The template context: the planning snapshot with its times in the patient's zone."""
    zone = snapshot.get("timezone") or "UTC"
    language = translation.get_language()
    context = dict(snapshot)
    for field in ("starts_at", "previous_starts_at"):
        if snapshot.get(field):
            prefix = "" if field == "starts_at" else "previous_"
            context[f"{prefix}date"], context[f"{prefix}time"] = local_date_and_time(snapshot[field], zone, language)
    return context


@functools.lru_cache(maxsize=4096)
def local_date_and_time(iso_time, zone, language):
    """An appointment's date and time as the patient reads them. Cached: the rows of one
    appointment, and a sweep's many rows, share a few times, and formatting them (translated
    day and month names) costs more than rendering the templates."""
    local = datetime.fromisoformat(iso_time).astimezone(ZoneInfo(zone))
    return dateformat.format(local, "l j F Y"), dateformat.format(local, "H:i T")
