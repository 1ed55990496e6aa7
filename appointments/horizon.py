"""How far ahead an appointment may be: BOOKING_MAX_DAYS_AHEAD days, counted in the patient's own
zone, so no date computed from it later (quiet hours, reminders, the invitation) overflows."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone


def check_horizon(starts_at, patient):
    """Raise a ValidationError naming starts_at when it falls after the last bookable day."""
    days = settings.BOOKING_MAX_DAYS_AHEAD
    zone = ZoneInfo(patient.timezone)
    now = timezone.now()
    last_day = now.astimezone(zone).date() + timedelta(days=days)
    # The UTC comparison first: a time past it is never converted to the patient's zone, where
    # 9999-12-31T09:00Z is already past the year 9999 (an OverflowError).
    if starts_at - now > timedelta(days=days + 2) or starts_at.astimezone(zone).date() > last_day:
        raise ValidationError(
            {"starts_at": [f"Must be at most {days} days ahead (on or before {last_day}, the patient's time)."]}
        )
