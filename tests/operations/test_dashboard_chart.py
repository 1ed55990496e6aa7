"""The dashboard's chart: sends and failures per hour over the last day, by channel, from the
attempt history, drawn as inline SVG in the page the server answers."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from notifications.models import NotificationAttempt
from notifications.operations.dashboard_chart import hourly_sends


@pytest.fixture
def rows(book):
    """A booking's email and SMS confirmations, to hang attempts on."""
    appointment = book()
    return {row.channel: row for row in appointment.notifications.filter(kind="booking_confirmation")}


@pytest.fixture
def attempt(rows):
    def make(channel, outcome, hours_ago):
        finished = timezone.now() - timedelta(hours=hours_ago)
        return NotificationAttempt.objects.create(
            notification=rows[channel], number=1, started_at=finished, finished_at=finished, outcome=outcome
        )

    return make


def hour_of(hours_ago):
    return (timezone.now() - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)


def test_attempts_are_counted_in_their_hour_by_channel_and_outcome(attempt):
    for _ in range(3):
        attempt("sms", "sent", 2)
    attempt("sms", "failed", 2)
    attempt("email", "sent", 0)
    attempt("email", "sent", 30)  # before the window

    series = dict(hourly_sends(24))

    assert len(series) == 24
    assert series[hour_of(2)] == {("sms", "sent"): 3, ("sms", "failed"): 1}
    assert series[hour_of(0)] == {("email", "sent"): 1}
    assert sum(sum(counts.values()) for counts in series.values()) == 5


def test_dashboard_draws_a_bar_per_hour_channel_and_outcome(client, staff_user, attempt):
    for _ in range(3):
        attempt("sms", "sent", 2)
    attempt("sms", "failed", 2)
    staff_user.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(staff_user)

    page = client.get("/admin/notifications/dashboard/").content.decode()

    hour = hour_of(2)
    label = f"{hour:%H}:00–{hour + timedelta(hours=1):%H}:00"
    start = page.index('<svg id="hourly-chart"')
    chart = page[start : page.index("</svg>", start)]
    assert re.findall(r"<title>(.*?)</title>", chart) == [f"sms {label}: 3 sent", f"sms {label}: 1 failed"]
    assert "<script" not in chart and "http" not in chart.replace("http://www.w3.org/2000/svg", "")
