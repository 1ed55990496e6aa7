"""The page a patient's link opens, /a/{token}/: GET shows the appointment as it is now and never
acts; the POST, CSRF-protected, confirms or cancels through the services the API uses; a token
that is tampered with, names another appointment or has expired gets a bare 404; requests are
rate-limited. Driven through Django's test client with CSRF checks on, as a browser posts."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from appointments import services
from appointments.links import SALT, link_for, token_for
from appointments.models import Appointment, PatientChange
from notifications.models import Notification


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def page_of(appointment):
    return f"/a/{token_for(appointment.pk)}/"


def post(browser, path, action):
    """Open the page, then press a button: the form's CSRF token, as the browser sends it."""
    page = browser.get(path)
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    # A page with no button left (cancelled): the token a page showed before, from its cookie.
    csrf = found.group(1) if found else browser.cookies["csrftoken"].value
    return browser.post(path, {"csrfmiddlewaretoken": csrf, "action": action})


def test_get_shows_the_appointment_in_the_patients_language_and_changes_nothing(browser, book, make_patient):
    patient = make_patient(language="es", timezone="Europe/Madrid")
    appointment = book(patient, provider="Dra. Ana Torres", location="Sala 2")
    local = timezone.localtime(appointment.starts_at, timezone=__import__("zoneinfo").ZoneInfo("Europe/Madrid"))

    for _ in range(3):
        answer = browser.get(page_of(appointment))

    html = answer.content.decode()
    assert answer.status_code == 200
    assert '<html lang="es">' in html
    assert "Dra. Ana Torres" in html and "Sala 2" in html
    assert local.strftime("%H:%M") in html
    assert 'value="confirm"' in html and 'value="cancel"' in html
    assert "Confirmar" in html and "Cancelar la cita" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert answer["Cache-Control"].startswith("max-age=0") or "no-cache" in answer["Cache-Control"]
    appointment.refresh_from_db()
    assert appointment.confirmed_at is None and appointment.status == "scheduled"


def test_confirm_goes_through_the_service_and_the_page_then_says_so(browser, book):
    appointment = book()

    answer = post(browser, page_of(appointment), "confirm")

    assert answer.status_code == 303
    appointment.refresh_from_db()
    first = appointment.confirmed_at
    assert first is not None
    shown = browser.get(answer["Location"]).content.decode()
    assert "your appointment is confirmed" in shown
    assert 'value="confirm"' not in shown  # nothing left to confirm
    # Again (a double click, a reload): the first confirmation stands.
    post(browser, page_of(appointment), "confirm")
    appointment.refresh_from_db()
    assert appointment.confirmed_at == first


def test_cancel_goes_through_the_service_with_its_notices_and_the_patients_allowance(browser, book, make_patient):
    appointment = book(make_patient(channels=["email"]))

    answer = post(browser, page_of(appointment), "cancel")
    post(browser, page_of(appointment), "cancel")  # again: nothing more happens

    assert answer.status_code == 303
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"
    # The same signal as the API's cancel: the cancellation notice is planned, the rest withdrawn.
    assert Notification.objects.filter(appointment=appointment, kind="cancellation").count() == 1
    assert not Notification.objects.filter(appointment=appointment, kind="reminder", status="pending").exists()
    assert PatientChange.objects.filter(appointment=appointment, action="cancel").count() == 1
    shown = browser.get(page_of(appointment)).content.decode()
    assert "This appointment is cancelled." in shown and 'value="cancel"' not in shown


def test_a_post_without_the_csrf_token_is_refused(browser, book):
    appointment = book()

    answer = browser.post(page_of(appointment), {"action": "confirm"})

    assert answer.status_code == 403
    appointment.refresh_from_db()
    assert appointment.confirmed_at is None


def test_an_unknown_action_changes_nothing(browser, book):
    appointment = book()

    answer = post(browser, page_of(appointment), "delete")

    assert answer.status_code == 400
    appointment.refresh_from_db()
    assert (appointment.status, appointment.confirmed_at) == ("scheduled", None)


def test_past_the_patients_allowance_of_changes_the_cancel_is_refused(browser, book, settings):
    settings.PATIENT_CHANGES_PER_DAY = 1
    appointment = book()
    PatientChange.objects.create(patient=appointment.patient, appointment=appointment, action="reschedule")

    answer = post(browser, page_of(appointment), "cancel")

    assert answer.status_code == 429
    appointment.refresh_from_db()
    assert appointment.status == "scheduled"


def test_an_old_link_after_a_reschedule_shows_the_new_time(browser, book, make_patient):
    appointment = book(make_patient(timezone="UTC"), starts_in=timedelta(days=3))
    old_link = page_of(appointment)
    new_time = (timezone.now() + timedelta(days=9)).replace(hour=14, minute=45, second=0, microsecond=0)

    services.reschedule(appointment.pk, starts_at=new_time)

    html = browser.get(old_link).content.decode()
    assert "14:45" in html
    assert new_time.strftime("%B") in html


@pytest.mark.parametrize("how", ["tampered", "another appointment", "started", "garbage", "another salt"])
def test_a_token_that_is_not_this_appointments_gets_a_bare_404(browser, book, make_patient, how):
    from django.core import signing

    appointment = book(make_patient(), provider="Dr. Grace Hopper")
    other = book(make_patient())
    token = token_for(appointment.pk)
    if how == "tampered":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif how == "another appointment":
        # This appointment's signature on the other's id.
        token = token_for(other.pk).split(":")[0] + ":" + token.split(":")[1]
    elif how == "started":
        Appointment.objects.filter(pk=appointment.pk).update(starts_at=timezone.now() - timedelta(minutes=1))
    elif how == "garbage":
        token = "not-a-token"
    else:
        token = signing.Signer(salt=SALT + ".other").sign("1")

    for answer in (browser.get(f"/a/{token}/"), browser.post(f"/a/{token}/", {"action": "cancel"})):
        assert answer.status_code in (404, 403)  # a POST without CSRF is refused before anything
    answer = browser.get(f"/a/{token}/")
    assert answer.status_code == 404
    assert "Dr. Grace Hopper" not in answer.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == "scheduled"


def test_the_page_is_rate_limited_per_token_and_per_client(book, settings):
    settings.APPOINTMENT_LINK_RATE_PER_MINUTE = 3
    appointment = book()
    other = book()

    answers = [Client().get(page_of(appointment)).status_code for _ in range(4)]
    # Another link from the same address is counted against the address too.
    from_same_client = Client().get(page_of(other)).status_code

    assert answers == [200, 200, 200, 429]
    assert from_same_client == 429


def test_the_link_is_absolute_under_site_url(book, settings):
    settings.SITE_URL = "https://clinic.example"
    appointment = book()

    assert link_for(appointment.pk) == f"https://clinic.example/a/{token_for(appointment.pk)}/"
    assert len(token_for(appointment.pk)) < 60


def test_the_page_lets_the_browser_send_its_origin_with_the_form(browser, book):
    """Found in headless Chromium (scripts/patient_screenshots.py): with `referrer: no-referrer`
    the browser posts `Origin: null`, and Django's CSRF check refused every button press (403)."""
    appointment = book()
    html = browser.get(page_of(appointment)).content.decode()
    policy = re.search(r'<meta name="referrer" content="([^"]+)">', html).group(1)
    # What a browser sends as Origin on a same-origin form POST under that policy.
    origin = "null" if policy == "no-referrer" else "http://testserver"
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

    answer = browser.post(page_of(appointment), {"csrfmiddlewaretoken": csrf, "action": "confirm"}, HTTP_ORIGIN=origin)

    assert answer.status_code == 303
