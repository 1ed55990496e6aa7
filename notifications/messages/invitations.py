"""The calendar invitation a confirmation or reschedule email carries (METHOD:REQUEST) and the
cancellation email's withdrawal of it (METHOD:CANCEL), built with icalendar (RFC 5545).

One UID per appointment, so the patient's calendar updates one entry; SEQUENCE is the
appointment's count of changes (snapshotted when the row was planned), so a late-arriving older
invitation never overwrites a newer one. Times are in the patient's time zone (the zone the
appointment's messages are written in), with its VTIMEZONE."""

import functools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext

from notifications.channels.email import sender_domain
from notifications.messages.kinds import NotificationKind
from notifications.messages.languages import message_language

METHODS = {
    NotificationKind.BOOKING_CONFIRMATION: "REQUEST",
    NotificationKind.RESCHEDULE: "REQUEST",
    NotificationKind.CANCELLATION: "CANCEL",
}


def appointment_uid(appointment_id):
    return f"appointment-{appointment_id}@{sender_domain() or 'localhost'}"


def invitation(notification):
    """(method, iCalendar text) for an email row of a kind that carries one, else None."""
    method = METHODS.get(notification.kind)
    snapshot = notification.context
    if method is None or not snapshot.get("starts_at"):
        return None
    # Imported with the first invitation, not with the module: reminders, most of what a sweep
    # sends, carry none, and icalendar is a costly import for a process cron starts every minute.
    from icalendar import Calendar, Event, vCalAddress

    zone = ZoneInfo(snapshot.get("timezone") or "UTC")
    starts_at = datetime.fromisoformat(snapshot["starts_at"]).astimezone(zone)
    with translation.override(message_language(snapshot)):
        summary = gettext("Appointment with %(provider)s") % {"provider": snapshot.get("provider", "")}
    event = Event()
    event.add("uid", appointment_uid(notification.appointment_id))
    event.add("sequence", snapshot.get("sequence", 0))
    event.add("dtstamp", timezone.now())
    event.add("dtstart", starts_at)
    event.add("dtend", starts_at + timedelta(minutes=snapshot.get("duration_minutes") or 30))
    event.add("summary", summary)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    if snapshot.get("location"):
        event.add("location", snapshot["location"])
    # The invitation travels with the email's body, and follows its rule (rendering.may_carry_reason).
    if snapshot.get("reason") and settings.NOTIFICATIONS_SHOW_REASON:
        event.add("description", snapshot["reason"])
    organizer = vCalAddress(f"mailto:{_address(settings.DEFAULT_FROM_EMAIL)}")
    organizer.params["cn"] = snapshot.get("clinic_name") or settings.CLINIC_NAME
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{notification.recipient}")
    attendee.params.update(cn=snapshot.get("patient_name", ""), role="REQ-PARTICIPANT", partstat="ACCEPTED")
    event.add("attendee", attendee)
    calendar = Calendar()
    calendar.add("prodid", "-//Appointment notifications//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(event)
    # The zone's VTIMEZONE goes before the event that names it. It is the same for every
    # appointment of that zone and year, and serializing it costs more than all the rest of
    # the email, so it is made by icalendar once and its text reused.
    head, event_start, rest = calendar.to_ical().partition(b"BEGIN:VEVENT")
    return method, (head + vtimezone(zone.key, starts_at.year) + event_start + rest).decode()


@functools.lru_cache(maxsize=256)
def vtimezone(zone_name, year):
    """The VTIMEZONE of a zone, as iCalendar text, with only the rules from the year before to
    the year after (the zone's full history would triple the invitation's size)."""
    from icalendar import Timezone  # with the first invitation, as in invitation()

    return Timezone.from_tzinfo(
        ZoneInfo(zone_name), first_date=date(year - 1, 1, 1), last_date=date(year + 2, 1, 1)
    ).to_ical()


def _address(sender):
    """'Clinic <appointments@clinic.example>' -> 'appointments@clinic.example'."""
    return sender.rpartition("<")[2].rstrip(">").strip()
