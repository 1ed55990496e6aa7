"""Screenshots of the admin's template page with its live preview, for docs/, taken in a real
headless Chromium driven by selenium: `.venv/bin/python scripts/screenshots.py`.

Runs the service's own web server on a free loopback port over a throwaway SQLite database,
with a Spanish SMS template, an email template and an appointment to preview; needs chromium
and chromedriver (Debian: apt-get install chromium chromium-driver)."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def seed():
    """A staff user, two templates and an appointment to preview with."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.utils import timezone

    from appointments import services
    from appointments.models import Patient
    from notifications.messages.store import save_template

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_superuser("demo", "demo@clinic.example", "demo-pass-123")
    sms = save_template(
        None,
        {
            "channel": "sms",
            "kind": "reminder",
            "language": "es",
            "text": "{{ clinic_name }}: le recordamos su cita con {{ provider }} el {{ date }} a las {{ time }}"
            "{% if location %}, {{ location }}{% endif %}. Para cambiarla, llámenos al 910 000 000.",
        },
        user,
    )
    email = save_template(
        None,
        {
            "channel": "email",
            "kind": "booking_confirmation",
            "language": "en",
            "subject": "Booked: {{ provider }}, {{ date }} at {{ time }}",
            "html": '{% extends "email/base.html" %}{% block body %}<p>See you soon! Please arrive ten minutes '
            "early{% if location %} at {{ location }}{% endif %}.</p>{% endblock %}",
        },
        user,
    )
    patient = Patient.objects.create(
        name="Lucía Pérez", email="lucia@example.com", timezone="Europe/Madrid", language="es", channels=["sms"]
    )
    appointment = services.book(
        patient=patient,
        provider="Dra. Ana Torres",
        starts_at=timezone.now() + timedelta(days=6),
        duration_minutes=30,
        location="Sala 2",
    )
    return sms.pk, email.pk, appointment.pk


def main():
    workdir = Path(tempfile.mkdtemp(prefix="screenshots-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    sms_id, email_id, appointment_id = seed()
    with web_server(env) as base:
        shoot(base, sms_id, email_id, appointment_id)


@contextlib.contextmanager
def web_server(env):
    """The service's web server on a free loopback port, once it answers; yields its base URL."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/admin/login/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextlib.contextmanager
def signed_in_browser(base):
    """Headless Chromium signed in to the admin as the demo user; yields the driver and a wait."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1500"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(driver, 15)
    try:
        driver.get(f"{base}/admin/login/")
        driver.find_element(By.NAME, "username").send_keys("demo")
        driver.find_element(By.NAME, "password").send_keys("demo-pass-123")
        driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "user-tools")))
        yield driver, wait
    finally:
        driver.quit()


def shoot(base, sms_id, email_id, appointment_id):
    from selenium.webdriver.common.by import By

    with signed_in_browser(base) as (driver, wait):
        # The Spanish SMS reminder with sample data: characters, encoding and segments.
        driver.get(f"{base}/admin/notifications/messagetemplate/{sms_id}/change/")
        wait.until(lambda d: d.find_element(By.ID, "preview-text").text.strip())
        save(driver, "template-admin-sms-preview.png")

        # The same, with a real appointment chosen, after an edit that makes it longer.
        driver.find_element(By.ID, "preview-appointment").send_keys(str(appointment_id))
        text = driver.find_element(By.NAME, "text")
        text.send_keys(" Si no puede venir, avísenos con 24 horas de antelación, por favor. ¡Gracias!")
        wait.until(lambda d: "Dra. Ana Torres" in d.find_element(By.ID, "preview-text").text)
        wait.until(lambda d: "avísenos" in d.find_element(By.ID, "preview-text").text)
        save(driver, "template-admin-sms-appointment-preview.png")

        # A typo in a variable: the preview names it before saving does.
        text.send_keys(" {{ patient_nam }}")
        wait.until(lambda d: d.find_element(By.ID, "preview-errors").is_displayed())
        save(driver, "template-admin-unknown-variable.png")

        # The email template: subject, text (the file's) and the HTML rendered in a frame.
        driver.get(f"{base}/admin/notifications/messagetemplate/{email_id}/change/")
        wait.until(lambda d: d.find_element(By.ID, "preview-subject").text.strip())
        driver.execute_script("document.getElementById('template-preview').scrollIntoView()")
        save(driver, "template-admin-email-preview.png")


def save(driver, name):
    DOCS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1280, min(max(height, 900), 2600))
    time.sleep(0.3)
    driver.save_screenshot(str(DOCS / name))
    print(f"docs/{name}")


if __name__ == "__main__":
    main()
