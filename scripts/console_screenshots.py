"""Screenshots of the console for docs/, from a real headless Chromium driven by selenium:
`.venv/bin/python scripts/console_screenshots.py` (console-home.png, patient-story.png,
admin-patient-form.png, admin-unreachable-warning.png). Also checks, in the browser, that the template editor shows no error
before anything is typed.

Runs the service's web server on a free loopback port over a throwaway SQLite database holding a
made-up clinic's day; needs chromium and chromedriver, as scripts/screenshots.py does."""

import os
import random
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.screenshots import signed_in_browser, web_server  # noqa: E402


def save_whole(driver, name):
    """The page at 1280 px wide and as tall as its content (the admin's body is as tall as the
    window, so its scrollHeight measures the window, not the page)."""
    driver.set_window_size(1280, 2600)
    bottom, inner = driver.execute_script(
        "return [document.getElementById('content').getBoundingClientRect().bottom, window.innerHeight]"
    )
    # The window's height counts the browser's own bars (2600 - inner) besides the page.
    driver.set_window_size(1280, int(bottom) + 40 + 2600 - inner)
    driver.save_screenshot(str(ROOT / "docs" / name))
    print(f"docs/{name}")


EMAIL_HTML = (
    '<div style="font-family: sans-serif; max-width: 520px; margin: auto; padding: 16px">'
    '<h2 style="color: #205067">Sunrise Clinic</h2><p>Hello Grace,</p>'
    "<p>Your appointment with <b>Dr. Ada Lovelace</b> is booked for <b>Tuesday 9 December at 09:30</b>, "
    "Room 4, Main Street Clinic.</p><p>Please arrive ten minutes early.</p>"
    '<p><a href="#" style="background: #205067; color: #fff; padding: 8px 14px; text-decoration: none">'
    "Confirm or cancel</a></p></div>"
)


CROWD = [
    "Ada Byron",
    "Edsger Dijkstra",
    "Frances Allen",
    "Donald Knuth",
    "Radia Perlman",
    "Ken Thompson",
    "Margaret Hamilton",
    "John Backus",
    "Sophie Wilson",
    "Niklaus Wirth",
    "Hedy Lamarr",
    "Dennis Ritchie",
]


def seed():
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from appointments.models import Appointment, Patient
    from notifications.channels import address_for
    from notifications.inbound.models import DeliveryReceipt, InboundMessage
    from notifications.models import Notification, NotificationAttempt

    call_command("migrate", verbosity=0)
    get_user_model().objects.create_superuser("demo", "demo@clinic.example", "demo-pass-123")
    now, randomly = timezone.now(), random.Random(24)

    def patient(name, email, phone="", channels=("email",), **fields):
        return Patient.objects.create(name=name, email=email, phone=phone, channels=list(channels), **fields)

    def appointment(who, hours, provider="Dr. Ada Lovelace"):
        return Appointment.objects.create(
            patient=who, provider=provider, starts_at=now + timedelta(hours=hours), location="Room 4"
        )

    def row(who, visit, channel, status, minutes_ago, kind="booking_confirmation", **fields):
        fields.setdefault("recipient", address_for(who, channel))
        at = now - timedelta(minutes=minutes_ago)
        made = Notification.objects.create(
            appointment=visit, patient=who, kind=kind, channel=channel, status=status, scheduled_for=at, **fields
        )
        if status in ("sent", "failed"):
            NotificationAttempt.objects.create(
                notification=made,
                number=1,
                started_at=at,
                finished_at=at + timedelta(seconds=1),
                outcome=status,
                error_code=fields.get("error_code", ""),
                error=fields.get("last_error", ""),
            )
        return made

    # A day of ordinary sends, for the figures and the chart.
    crowd = [
        patient(name, f"{name.split()[0].lower()}@example.com", f"+1415555{n:04d}", ["email", "sms"])
        for n, name in enumerate(CROWD)
    ]
    for _ in range(140):
        who = randomly.choice(crowd)
        visit = appointment(who, randomly.randint(30, 400))
        channel = randomly.choice(["email", "sms", "sms", "whatsapp"])
        failed = randomly.random() < 0.05
        row(
            who,
            visit,
            channel,
            "failed" if failed else "sent",
            randomly.randint(5, 23 * 60),
            sent_at=None if failed else now,
            died_at=now if failed else None,
            error_code="30003" if failed else "",
            last_error="Twilio: unreachable handset" if failed else "",
            delivery_status="" if failed or channel == "email" else "delivered",
        )

    # Grace: her SMS refused (a landline), the email sent instead and read, her reply confirming.
    grace = patient("Grace Hopper", "grace@example.com", "+14155550123", ["sms", "email"], timezone="America/New_York")
    visit = appointment(grace, 30)
    Appointment.objects.filter(pk=visit.pk).update(created_at=now - timedelta(hours=6))
    sms = row(
        grace,
        visit,
        "sms",
        "failed",
        355,
        attempts=1,
        died_at=now - timedelta(minutes=355),
        error_code="21614",
        last_error="Twilio 400 error 21614: The 'To' number is not a mobile number",
    )
    email = row(
        grace,
        visit,
        "email",
        "sent",
        354,
        fallback_for=sms,
        attempts=1,
        sent_at=now - timedelta(minutes=354),
        rendered_subject="Booked: Dr. Ada Lovelace, Tue 9 Dec at 09:30",
        rendered_text="Hello Grace, your appointment with Dr. Ada Lovelace is booked.",
        rendered_html=EMAIL_HTML,
    )
    DeliveryReceipt.objects.create(
        notification=email, message_sid="em-1", status="delivered", received_at=now - timedelta(minutes=350)
    )
    InboundMessage.objects.create(
        patient=grace,
        channel="sms",
        from_number="+14155550123",
        body="C",
        message_sid="SM-1",
        action="confirmed",
        appointment=visit,
        received_at=now - timedelta(minutes=200),
    )
    Appointment.objects.filter(pk=visit.pk).update(confirmed_at=now - timedelta(minutes=200))

    # Who cannot be reached, and appointments soon with nothing delivered.
    alan = patient("Alan Turing", "alan@example.com", "", ["sms", "whatsapp"])
    appointment(alan, 20, "Dr. Grace Hopper")
    patient("Katherine Johnson", "kj@example.com", "+14155550188", ["sms"], opted_out=["sms"])
    barbara = patient("Barbara Liskov", "barbara@example.org", "+14155550177", ["email"])
    soon = appointment(barbara, 26, "Dr. Who")
    row(barbara, soon, "email", "failed", 90, error_code="550", last_error="SMTP 550: mailbox unavailable")
    Notification.objects.filter(patient=barbara).update(died_at=now - timedelta(minutes=89))
    # A small backlog, the oldest due twelve minutes ago.
    for minutes in (12, 7, 3):
        row(
            crowd[minutes % len(crowd)],
            appointment(crowd[minutes % len(crowd)], 100),
            "sms",
            "pending",
            minutes,
            kind="reminder",
        )
    return grace.pk


def shoot(base, grace_id):
    from selenium.webdriver.common.by import By

    with signed_in_browser(base) as (driver, wait):
        # Signing in lands on the console.
        assert driver.current_url == f"{base}/admin/", driver.current_url
        wait.until(lambda d: d.find_element(By.ID, "unreachable"))
        save_whole(driver, "console-home.png")

        driver.get(f"{base}/admin/console/patients/{grace_id}/")
        wait.until(lambda d: d.find_element(By.ID, "story"))
        save_whole(driver, "patient-story.png")

        driver.get(f"{base}/admin/appointments/patient/{grace_id}/change/")
        wait.until(lambda d: d.find_element(By.NAME, "channels"))
        save_whole(driver, "admin-patient-form.png")

        # A patient who chose SMS with no phone: saved, with a warning saying where messages go.
        driver.get(f"{base}/admin/appointments/patient/add/")
        wait.until(lambda d: d.find_element(By.NAME, "channels"))
        driver.find_element(By.NAME, "name").send_keys("Ada Byron")
        driver.find_element(By.NAME, "email").send_keys("ada@example.com")
        driver.find_element(By.NAME, "timezone").clear()
        driver.find_element(By.NAME, "timezone").send_keys("Europe/London")
        driver.find_element(By.CSS_SELECTOR, "input[name=channels][value=sms]").click()
        driver.find_element(By.NAME, "_continue").click()
        warning = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".messagelist .warning"))
        assert "sms" in warning.text.lower(), warning.text
        save_whole(driver, "admin-unreachable-warning.png")

        # The template editor, before anything is typed: a hint, no error.
        driver.get(f"{base}/admin/notifications/messagetemplate/add/")
        wait.until(lambda d: d.find_element(By.ID, "preview-hint").is_displayed())
        assert not driver.find_element(By.ID, "preview-errors").is_displayed(), "an error before typing"
        print("template editor: no error before typing")


def main():
    workdir = Path(tempfile.mkdtemp(prefix="console-screenshots-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
    }
    os.environ.update(env)
    grace_id = seed()
    with web_server(env) as base:
        shoot(base, grace_id)


if __name__ == "__main__":
    main()
