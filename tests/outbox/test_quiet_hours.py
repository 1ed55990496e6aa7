"""Quiet hours: text reminders wait for the end of the patient's night; confirmations,
cancellations and the last reminder before the appointment do not."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from appointments import services
from notifications.outbox.quiet_hours import quiet_end

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = (time(21), time(8))


@pytest.fixture(autouse=True)
def clinic_rules(settings):
    settings.NOTIFICATIONS_QUIET_HOURS = {"sms": NIGHT, "whatsapp": NIGHT}
    settings.NOTIFICATIONS_REMINDER_SCHEDULE = [
        {"days_before": 1, "channels": ["sms", "email"]},
        {"hours_before": 2, "channels": ["sms"]},
    ]


def local(zone, *args):
    return datetime(*args, tzinfo=zone)


def reminders(appointment, channel):
    return sorted(n.scheduled_for for n in appointment.notifications.filter(kind="reminder", channel=channel))


def book_at(make_patient, starts_at, zone="Europe/London", channels=("sms", "email")):
    return services.book(
        patient=make_patient(channels=list(channels), timezone=zone),
        provider="Dr. Ada Lovelace",
        starts_at=starts_at,
        duration_minutes=30,
    )


def test_time_inside_the_night_moves_to_its_end():
    assert quiet_end(local(LONDON, 2030, 6, 3, 22, 30), LONDON, NIGHT) == local(LONDON, 2030, 6, 4, 8, 0)


def test_time_after_midnight_moves_to_the_same_morning():
    assert quiet_end(local(LONDON, 2030, 6, 4, 3, 0), LONDON, NIGHT) == local(LONDON, 2030, 6, 4, 8, 0)


def test_time_in_the_day_is_not_quiet():
    assert quiet_end(local(LONDON, 2030, 6, 4, 12, 0), LONDON, NIGHT) is None


def test_window_within_one_day_works_too():
    lunch = (time(12), time(13))
    assert quiet_end(local(LONDON, 2030, 6, 4, 12, 30), LONDON, lunch) == local(LONDON, 2030, 6, 4, 13, 0)


def test_end_of_a_night_across_the_spring_change_is_eight_local():
    # Clocks go forward at 01:00 UTC on 31 March 2030 in London: 08:00 is then 07:00 UTC.
    moved = quiet_end(local(LONDON, 2030, 3, 30, 22, 0), LONDON, NIGHT)
    assert moved.astimezone(ZoneInfo("UTC")) == datetime(2030, 3, 31, 7, 0, tzinfo=ZoneInfo("UTC"))


def test_end_of_a_night_across_the_autumn_change_is_eight_local():
    # Clocks go back on 27 October 2030 in London: 08:00 is then 08:00 UTC.
    moved = quiet_end(local(LONDON, 2030, 10, 26, 23, 0), LONDON, NIGHT)
    assert moved.astimezone(ZoneInfo("UTC")) == datetime(2030, 10, 27, 8, 0, tzinfo=ZoneInfo("UTC"))


def test_sms_reminder_in_the_night_waits_for_the_morning(make_patient):
    appointment = book_at(make_patient, local(LONDON, 2030, 6, 5, 23, 0))  # its day-before SMS: 23:00

    assert reminders(appointment, "sms")[0] == local(LONDON, 2030, 6, 5, 8, 0)


def test_email_reminder_in_the_night_keeps_its_time(make_patient):
    appointment = book_at(make_patient, local(LONDON, 2030, 6, 5, 23, 0))

    assert reminders(appointment, "email") == [local(LONDON, 2030, 6, 4, 23, 0)]


def test_last_reminder_before_the_appointment_goes_at_its_time(make_patient):
    appointment = book_at(make_patient, local(LONDON, 2030, 6, 5, 7, 30))  # 2-hour SMS at 05:30

    assert local(LONDON, 2030, 6, 5, 5, 30) in reminders(appointment, "sms")


def test_reminder_whose_night_ends_after_the_appointment_keeps_its_time(settings, make_patient):
    settings.NOTIFICATIONS_REMINDER_SCHEDULE = [
        {"hours_before": 4, "channels": ["sms"]},
        {"hours_before": 1, "channels": ["sms"]},
    ]
    appointment = book_at(make_patient, local(LONDON, 2030, 6, 5, 7, 0))  # 4-hour SMS at 03:00

    assert reminders(appointment, "sms") == [local(LONDON, 2030, 6, 5, 3, 0), local(LONDON, 2030, 6, 5, 6, 0)]


def test_quiet_hours_follow_the_patients_zone(make_patient):
    # 23:00 in New York is 04:00 in London: quiet for a New Yorker, so it moves to 08:00 there.
    appointment = book_at(make_patient, local(NEW_YORK, 2030, 6, 5, 23, 0), zone="America/New_York")

    assert reminders(appointment, "sms")[0] == local(NEW_YORK, 2030, 6, 5, 8, 0)


def test_confirmation_is_sent_at_once_at_night(make_patient, twilio):
    appointment = book_at(make_patient, local(LONDON, 2030, 6, 5, 23, 0))
    confirmation = appointment.notifications.get(kind="booking_confirmation", channel="sms")

    assert confirmation.scheduled_for == appointment.created_at


def test_no_quiet_hours_when_turned_off(settings, make_patient):
    settings.NOTIFICATIONS_QUIET_HOURS = {}
    appointment = book_at(make_patient, local(LONDON, 2030, 6, 5, 23, 0))

    assert reminders(appointment, "sms")[0] == local(LONDON, 2030, 6, 4, 23, 0)
