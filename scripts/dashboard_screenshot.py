"""A screenshot of the staff dashboard's hourly chart for docs/, from a real headless Chromium
driven by selenium: `.venv/bin/python scripts/dashboard_screenshot.py`.

Runs the service's web server on a free loopback port over a throwaway SQLite database holding a
made-up day of sends (a quiet night, a busy morning, an SMS outage at one hour); needs chromium and
chromedriver, as scripts/screenshots.py does."""

import os
import random
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.screenshots import save, signed_in_browser, web_server  # noqa: E402

# Sends per hour of the day, by channel: the clinic's day.
PROFILE = [1, 0, 0, 0, 0, 1, 3, 8, 14, 18, 16, 12, 9, 11, 15, 17, 14, 10, 7, 5, 3, 2, 1, 1]
SHARE = {"email": 1.0, "sms": 0.8, "whatsapp": 0.4, "in_app": 0.5}


def seed():
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from appointments.models import Appointment, Patient
    from notifications.channels import address_for
    from notifications.models import Notification, NotificationAttempt

    call_command("migrate", verbosity=0)
    get_user_model().objects.create_superuser("demo", "demo@clinic.example", "demo-pass-123")
    patient = Patient.objects.create(
        name="Grace Hopper", email="grace@example.com", phone="+14155550100", channels=list(SHARE)
    )
    appointment = Appointment.objects.create(patient=patient, provider="Dr. Ada Lovelace", starts_at=timezone.now())
    now, randomly = timezone.now(), random.Random(17)
    attempts = []
    for hours_ago in range(24):
        finished = now - timedelta(hours=hours_ago, minutes=randomly.randint(0, 50))
        for channel, share in SHARE.items():
            for _ in range(round(PROFILE[finished.hour] * share * randomly.uniform(0.7, 1.3))):
                broken = channel in ("sms", "whatsapp") and hours_ago == 5  # Twilio answering 5xx for an hour
                failed = broken or randomly.random() < 0.04
                row = Notification(
                    appointment=appointment,
                    patient=patient,
                    kind="reminder",
                    channel=channel,
                    status="failed" if failed else "sent",
                    scheduled_for=finished - timedelta(seconds=randomly.randint(1, 10**6)),
                    recipient=address_for(patient, channel),
                    attempts=1,
                    died_at=finished if failed else None,
                    error_code="20500" if failed else "",
                    last_error="Twilio 500 error 20500: Internal Server Error" if failed else "",
                )
                attempts.append((row, finished, failed))
    Notification.objects.bulk_create([row for row, _, _ in attempts])
    NotificationAttempt.objects.bulk_create(
        NotificationAttempt(
            notification=row,
            number=1,
            started_at=finished - timedelta(seconds=0.4),
            finished_at=finished,
            outcome="failed" if failed else "sent",
            error_code="20500" if failed else "",
        )
        for row, finished, failed in attempts
    )


def main():
    workdir = Path(tempfile.mkdtemp(prefix="dashboard-screenshot-"))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": f"sqlite:///{workdir / 'db'}"}
    os.environ.update(env)
    seed()
    with web_server(env) as base, signed_in_browser(base) as (driver, wait):
        driver.get(f"{base}/admin/notifications/dashboard/")
        chart = wait.until(lambda d: d.find_element("id", "hourly-chart"))
        driver.execute_script("arguments[0].scrollIntoView()", chart)
        save(driver, "dashboard-hourly-chart.png")


if __name__ == "__main__":
    main()
