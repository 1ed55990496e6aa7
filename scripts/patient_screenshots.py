"""Screenshots of what a patient sees, for docs/, taken in headless Chromium driven by selenium:
the booking confirmation email (email-confirmation-360.png, email-confirmation-1280.png) and
the appointment's page its buttons open (patient-link-360.png, patient-link-1280.png), each at a
phone's width and a desktop's, then the page after pressing Confirm (patient-link-confirmed-360.png). `.venv/bin/python scripts/patient_screenshots.py`

Runs the service's own web server on a free loopback port over a throwaway SQLite database;
needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)."""

import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))

from scripts.screenshots import web_server  # noqa: E402


def seed():
    """The clinic's record, a patient and their appointment; returns the appointment."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from appointments import services
    from appointments.models import Clinic, Patient

    call_command("migrate", verbosity=0)
    Clinic.objects.create(
        name="Harbour Family Practice",
        phone="+44 20 7946 0000",
        address="1 Quay Street\nBristol BS1 4DJ",
        website="https://clinic.example",
    )
    patient = Patient.objects.create(
        name="Grace Hopper", email="grace@example.com", timezone="Europe/London", language="en", channels=["email"]
    )
    starts_at = (timezone.now() + timedelta(days=6)).replace(hour=9, minute=30, second=0, microsecond=0)
    return services.book(
        patient=patient, provider="Dr. Ada Lovelace", starts_at=starts_at, duration_minutes=30, location="Room 4"
    )


def main():
    workdir = Path(tempfile.mkdtemp(prefix="patient-screenshots-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
    }
    os.environ.update(env)
    appointment = seed()
    with web_server(env) as base:
        from django.conf import settings

        from appointments.links import link_for
        from notifications.messages.rendering import render
        from notifications.models import Notification

        settings.SITE_URL = base
        row = Notification.objects.select_related("patient", "appointment").get(
            appointment=appointment, channel="email", kind="booking_confirmation"
        )
        email = workdir / "email.html"
        email.write_text(render(row).html, encoding="utf-8")
        shoot({"email-confirmation": email.as_uri(), "patient-link": link_for(appointment.pk)})


def shoot(pages):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        for name, url in pages.items():
            for width in (360, 1280):
                # A phone's viewport exactly (a window cannot be made that narrow).
                metrics = {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600}
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
                driver.get(url)
                time.sleep(0.3)
                height = driver.execute_script("return document.documentElement.scrollHeight")
                driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics | {"height": height})
                time.sleep(0.2)
                save(driver, f"{name}-{width}.png")
        # In the browser, as a patient does: Confirm posts the form (with its CSRF token), the
        # page comes back saying so.
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics | {"width": 360, "height": 800})
        driver.get(pages["patient-link"])
        driver.find_element(By.CSS_SELECTOR, "button[value=confirm]").click()
        WebDriverWait(driver, 15).until(lambda d: "done=confirm" in d.current_url)
        assert "your appointment is confirmed" in driver.page_source, driver.page_source[:2000]
        save(driver, "patient-link-confirmed-360.png")
    finally:
        driver.quit()


def save(driver, name):
    DOCS.mkdir(exist_ok=True)
    driver.save_screenshot(str(DOCS / name))
    print(f"docs/{name}")


if __name__ == "__main__":
    main()
