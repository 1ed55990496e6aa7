"""The dashboard's Twilio sections, after the real thing happened: patients replied C and STOP
through the stand-in Twilio to our inbound webhook, Twilio refused a send with 21610, a receipt
came back undelivered with 30003. The figures are read off the rendered page."""

from datetime import timedelta

import pytest

from notifications.models import Notification
from tests.conftest import settled, wait_for
from tests.operations.test_dashboard import Tables, staff_browser  # noqa: F401 - the fixture

DASHBOARD = "/admin/notifications/dashboard/"


@pytest.fixture
def webhooks_to_us(settings, live_server):
    settings.TWILIO_STATUS_CALLBACK_URL = f"{live_server.url}/webhooks/twilio/status/"
    settings.TWILIO_INBOUND_URL = ""
    return f"{live_server.url}/webhooks/twilio/inbound/"


def test_dashboard_shows_confirmations_opt_outs_and_failures_by_code(
    celery_worker,
    webhooks_to_us,
    twilio,
    book,
    make_patient,
    staff_browser,  # noqa: F811
):
    confirming = make_patient(channels=["email"], phone="+14155550101")
    stopping = make_patient(channels=["email"], phone="+14155550102")
    book(confirming, starts_in=timedelta(days=2))
    book(stopping, starts_in=timedelta(days=3))
    twilio.send_inbound(webhooks_to_us, "+14155550101", "C", "+15005550006")
    twilio.send_inbound(webhooks_to_us, "+14155550102", "STOP", "+15005550006")
    unsubscribed = book(make_patient(channels=["sms"], phone="+15005550004"))
    twilio.script("+14155550103", ("undelivered", "30003"))
    unreachable = book(make_patient(channels=["sms"], phone="+14155550103"))
    settled(Notification.objects.filter(appointment__in=[unsubscribed, unreachable], kind="booking_confirmation"))
    wait_for(lambda: Notification.objects.filter(delivery_error_code="30003").exists())

    page = Tables(staff_browser.get(DASHBOARD).text)

    assert (page.texts["confirmed"], page.texts["upcoming"]) == ("1", "4")
    assert {row[0]: row[1:] for row in page.tables["opt-outs"][1:]} == {
        "email": ["0", "0"],
        "sms": ["2", "1"],
        "whatsapp": ["0", "0"],
        "in_app": ["0", "0"],
    }
    failures = {row[0]: row[1:] for row in page.tables["failures-by-code"][1:]}
    assert failures == {
        "21610": ["The recipient texted STOP to our number (unsubscribed)", "1", "0"],
        "30003": ["Unreachable handset (switched off or out of coverage)", "0", "1"],
    }
