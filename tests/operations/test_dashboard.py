"""The staff dashboard (/admin/notifications/dashboard/: the last 24 hours by status and channel,
the failure rate, the dead rows with their errors) and the notification admin's filters and
search. The rows are written directly, so every figure is known in advance."""

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from appointments.models import Appointment
from notifications.channels import address_for
from notifications.models import Notification
from notifications.operations.monitoring import dashboard_figures

DASHBOARD = "/admin/notifications/dashboard/"
CHANGELIST = "/admin/notifications/notification/"
CHANNELS = ["email", "sms", "whatsapp", "in_app"]


@pytest.fixture
def appointment(make_patient):
    """An appointment written directly: no event, so no rows but the ones each test makes."""
    patient = make_patient(channels=["email", "sms", "whatsapp", "in_app"], phone="+14155550123")
    return Appointment.objects.create(
        patient=patient, provider="Dr. Ada Lovelace", starts_at=timezone.now() + timedelta(days=3)
    )


@pytest.fixture
def make_row(appointment):
    def make(status, channel, hours_ago, kind="booking_confirmation", **fields):
        now = timezone.now()
        return Notification.objects.create(
            appointment=appointment,
            patient=appointment.patient,
            kind=kind,
            channel=channel,
            status=status,
            scheduled_for=now - timedelta(hours=hours_ago),
            recipient=address_for(appointment.patient, channel),
            **fields,
        )

    return make


@pytest.fixture
def last_day(make_row):
    """Rows due in the last 24 hours, a few outside that window, and the figures they make."""
    now = timezone.now()
    later = now + timedelta(minutes=30)
    rows = {
        "sent": [make_row("sent", "sms", h) for h in (1, 2, 3)] + [make_row("sent", "email", h) for h in (1, 2)],
        "retrying": make_row(
            "failed",
            "sms",
            4,
            attempts=2,
            next_attempt_at=later,
            last_error="Twilio 503: Service error",
            error_code="20500",
        ),
        "dead_sms": make_row(
            "failed",
            "sms",
            5,
            attempts=1,
            error_code="21211",
            last_error="Twilio 400 error 21211: The 'To' number is not a valid phone number.",
        ),
        "dead_email": make_row(
            "failed",
            "email",
            6,
            attempts=5,
            error_code="550",
            last_error="SMTP 550: mailbox unavailable",
        ),
        "pending": make_row("pending", "email", 1, kind="reminder"),
        "cancelled": make_row("cancelled", "whatsapp", 2),
        "skipped": make_row("skipped", "in_app", 3, last_error="patient opted out of in_app"),
        # Outside the window: due more than 24 hours ago, or not due yet.
        "old_sent": make_row("sent", "sms", 30),
        "old_failed": make_row(
            "failed", "email", 25, attempts=1, next_attempt_at=later, last_error="SMTP 421: try later"
        ),
        "future": make_row("pending", "sms", -48, kind="reminder"),
    }
    return rows


class Tables(HTMLParser):
    """Each <table> of a page as rows of cell texts, by id (or position when it has none);
    and the text of elements with an id."""

    def __init__(self, html):
        super().__init__()
        self.tables, self.texts = {}, {}
        self._table = self._row = self._cell = None
        self._open_ids = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = []
            self.tables[attrs.get("id", len(self.tables))] = self._table
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        if "id" in attrs:
            self._open_ids.append((tag, attrs["id"]))
            self.texts[attrs["id"]] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        for _, element_id in self._open_ids:
            self.texts[element_id] += data


@pytest.fixture
def staff_browser(client, staff_user):
    """Staff allowed to view notifications, which the dashboard needs."""
    staff_user.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(staff_user)
    return client


@pytest.fixture
def viewer_browser(client, staff_user):
    """Staff allowed to look at notifications in the admin (the view permission)."""
    staff_user.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(staff_user)
    return client


def dashboard_page(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    return Tables(response.content.decode())


# The dashboard's figures.


def test_figures_count_last_day_rows_by_status_and_channel(last_day):
    by_status = dashboard_figures()["by_status"]

    assert by_status == {
        "pending": {"email": 1},
        "sending": {},
        "sent": {"sms": 3, "email": 2},
        "failed": {"sms": 2, "email": 1},
        "cancelled": {"whatsapp": 1},
        "skipped": {"in_app": 1},
    }


def test_figures_failure_rate_is_failed_of_sent_and_failed_in_the_window(last_day):
    # 3 failed and 5 sent in the window; the old sent and failed rows would make it 4 of 10.
    assert dashboard_figures()["failure_rate"] == pytest.approx(3 / 8)


def test_figures_failure_rate_is_zero_without_rows(db):
    assert dashboard_figures()["failure_rate"] == 0.0


def test_figures_list_dead_rows_with_their_errors(last_day):
    figures = dashboard_figures()

    assert figures["dead_count"] == 2
    assert {(n.pk, n.error_code, n.last_error) for n in figures["dead"]} == {
        (last_day["dead_sms"].pk, "21211", last_day["dead_sms"].last_error),
        (last_day["dead_email"].pk, "550", last_day["dead_email"].last_error),
    }


def test_figures_count_due_rows_and_the_oldest_wait(last_day):
    figures = dashboard_figures()

    # Only the pending reminder is due: the failed rows wait for their retry time.
    assert figures["due"] == 1
    assert figures["oldest_due_age_seconds"] == pytest.approx(3600, abs=60)


# The page.


def test_dashboard_redirects_anonymous_visitors_to_admin_login(client, db):
    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "next=/admin/notifications/dashboard/" in response["Location"]


def test_dashboard_redirects_signed_in_non_staff_to_admin_login(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("clerk", "clerk@clinic.example", "clerk-pass-123"))

    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_dashboard_shows_counts_by_status_and_channel(staff_browser, last_day):
    page = dashboard_page(staff_browser)
    header, *body = page.tables["by-status"]
    figures = dashboard_figures()

    assert header == ["status", *CHANNELS, "total"]
    shown = {row[0]: [int(cell) for cell in row[1:]] for row in body}
    expected = {
        status: [counts.get(channel, 0) for channel in CHANNELS] + [sum(counts.values())]
        for status, counts in figures["by_status"].items()
    }
    assert shown == expected
    assert shown["sent"] == [2, 3, 0, 0, 5]
    assert shown["failed"] == [1, 2, 0, 0, 3]


def test_dashboard_shows_failure_rate(staff_browser, last_day):
    page = dashboard_page(staff_browser)

    assert page.texts["failure-rate"].strip() == "37.5 %"


def test_dashboard_shows_due_count(staff_browser, last_day):
    page = dashboard_page(staff_browser)

    assert page.texts["due"].strip() == "1"


def test_dashboard_lists_dead_rows_with_their_errors(staff_browser, last_day):
    page = dashboard_page(staff_browser)
    header, *body = page.tables["dead"]

    assert header == ["id", "patient", "kind", "channel", "attempts", "code", "error"]
    shown = {int(row[0]): (row[3], row[5], row[6]) for row in body}
    assert shown == {
        last_day["dead_sms"].pk: ("sms", "21211", last_day["dead_sms"].last_error),
        last_day["dead_email"].pk: ("email", "550", last_day["dead_email"].last_error),
    }


def test_dashboard_says_none_when_nothing_is_dead(staff_browser, make_row):
    make_row("sent", "sms", 1)

    page = dashboard_page(staff_browser)

    assert page.tables["dead"][1:] == [["None."]]
    assert page.texts["failure-rate"].strip() == "0.0 %"


# The notification admin.


@pytest.fixture
def admin_rows(make_row):
    return {
        "failed_sms": make_row("failed", "sms", 1, error_code="21211", last_error="Twilio 400 error 21211"),
        "sent_whatsapp": make_row(
            "sent", "whatsapp", 2, provider_message_id="SM" + "a" * 32, delivery_status="undelivered"
        ),
        "sent_sms": make_row("sent", "sms", 3, provider_message_id="SM" + "b" * 32, delivery_status="delivered"),
        "cancelled_email": make_row("cancelled", "email", 4, kind="cancellation"),
    }


def listed(response):
    assert response.status_code == 200
    return {n.pk for n in response.context["cl"].result_list}


def test_changelist_redirects_anonymous_visitors_to_admin_login(client, admin_rows):
    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_changelist_lists_every_row_without_filters(viewer_browser, admin_rows):
    assert listed(viewer_browser.get(CHANGELIST)) == {row.pk for row in admin_rows.values()}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("status=failed", {"failed_sms"}),
        ("status__exact=sent", {"sent_whatsapp", "sent_sms"}),
        ("channel__exact=sms", {"failed_sms", "sent_sms"}),
        ("kind__exact=cancellation", {"cancelled_email"}),
        ("delivery_status__exact=undelivered", {"sent_whatsapp"}),
        ("status__exact=sent&channel__exact=sms", {"sent_sms"}),
    ],
)
def test_changelist_filters_rows(viewer_browser, admin_rows, query, expected):
    response = viewer_browser.get(f"{CHANGELIST}?{query}")

    assert listed(response) == {admin_rows[name].pk for name in expected}


def test_changelist_search_finds_a_row_by_provider_sid(viewer_browser, admin_rows):
    sid = admin_rows["sent_whatsapp"].provider_message_id

    response = viewer_browser.get(CHANGELIST, {"q": sid})

    assert listed(response) == {admin_rows["sent_whatsapp"].pk}


def test_changelist_offers_the_status_channel_kind_and_delivery_filters(viewer_browser, admin_rows):
    response = viewer_browser.get(CHANGELIST)

    titles = {spec.title for spec in response.context["cl"].filter_specs}
    assert {"status", "channel", "kind", "delivery status"} <= titles
