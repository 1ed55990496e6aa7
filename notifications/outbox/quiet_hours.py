"""Quiet hours: no text message reminder in the middle of the patient's night."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings


def quiet_end(at, zone, window):
    """When the quiet period containing `at` ends, in the patient's zone, or None when `at` is
    outside it. The end is a wall-clock time, so across a daylight-saving change it still
    falls at, say, 08:00 local."""
    start, end = window
    local = at.astimezone(zone)
    clock = local.time()
    if start <= end:
        inside, end_day = start <= clock < end, local.date()
    else:  # the window spans midnight
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    return datetime.combine(end_day, end, tzinfo=zone) if inside else None


def adjust_reminders(reminders, starts_at, timezone_name):
    """[(time, channel)] with each reminder that falls in its channel's quiet hours moved to
    their end, unless that is after the appointment starts or the reminder is the channel's
    last before it: then it keeps its time, quiet or not."""
    zone = ZoneInfo(timezone_name)
    last = {}
    for at, channel in reminders:
        last[channel] = max(at, last.get(channel, at))
    adjusted = []
    for at, channel in reminders:
        window = settings.NOTIFICATIONS_QUIET_HOURS.get(channel)
        moved = quiet_end(at, zone, window) if window else None
        if moved is not None and moved < starts_at and at != last[channel]:
            at = moved
        adjusted.append((at, channel))
    return adjusted
