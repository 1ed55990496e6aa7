"""A message rendered before it goes out: with a chosen appointment, or with sample data."""

from datetime import UTC, datetime

from django.conf import settings
from django.utils import translation

from appointments.links import link_for
from appointments.models import Appointment, Patient
from notifications.channels.choices import Channel
from notifications.messages.rendering import link_wanted, message_context, render_parts, with_link
from notifications.messages.segments import count_segments
from notifications.messages.snapshot import snapshot


def sample_snapshot(language):
    """A planning snapshot of an appointment that exists nowhere, with every variable a
    message can use filled in: an unsaved appointment goes through the same snapshot() as a
    booking, so the two cannot drift apart."""
    patient = Patient(name="Grace Hopper", timezone="Europe/Madrid", language=language)
    appointment = Appointment(
        patient=patient,
        provider="Dr. Ada Lovelace",
        starts_at=datetime(2026, 12, 8, 8, 30, tzinfo=UTC),
        duration_minutes=30,
        location="Room 4, Main Street Clinic",
        reason="Check-up",
        cancel_reason="The doctor is unwell",
    )
    return snapshot(appointment, previous_starts_at=datetime(2026, 12, 7, 15, 0, tzinfo=UTC))


def preview_snapshot(language, appointment=None):
    """The snapshot a preview renders: the appointment's as it would be planned now, in the
    previewed language, or the sample's."""
    if appointment is None:
        return sample_snapshot(language)
    return {**snapshot(appointment), "language": language}


def render_preview(channel, kind, language, stored, appointment=None):
    """{subject, text, html} as the patient would get them, the parts in `stored` (compiled)
    standing in for the clinic's saved ones; for SMS and WhatsApp also the characters, the
    encoding and the segments the text takes."""
    context = preview_snapshot(language, appointment)
    # The sample's link is as long as a real one (appointment 0 exists nowhere: its page is a 404).
    link = link_for(appointment.pk if appointment is not None else 0) if link_wanted(channel, kind) else ""
    with translation.override(language):
        context = message_context(context, language) | {"action_url": link}
        parts = render_parts(channel, kind, context, stored)
    if link and channel == Channel.SMS:
        parts["text"] = with_link(parts["text"], link)
    result = {"subject": parts.get("subject", ""), "text": parts["text"], "html": parts.get("html", "")}
    if channel in (Channel.SMS, Channel.WHATSAPP):
        count = count_segments(parts["text"])
        result.update(characters=count.characters, encoding=count.encoding, segments=count.segments)
        if channel == Channel.SMS:
            result["max_segments"] = settings.NOTIFICATIONS_SMS_MAX_SEGMENTS
    return result
