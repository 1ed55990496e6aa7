"""Patients' replies: the stand-in Twilio posts their messages, signed, to our real inbound
webhook (a live server) and we answer in TwiML. C confirms, Twilio's opt-out and opt-in words
turn a channel off and on, HELP helps, anything else is kept for staff, a stranger changes
nothing."""

from datetime import timedelta
from xml.etree import ElementTree

import pytest
from django.utils import timezone
from twilio.request_validator import RequestValidator

from appointments.models import Patient
from notifications.models import InboundMessage, Notification
from tests.conftest import settled, wait_for
from tests.twilio_standin_webhooks import idempotency_header, inbound_params

PHONE = "+14155550188"
SMS_NUMBER = "+15005550006"
WHATSAPP_NUMBER = "whatsapp:+14155238886"
PATH = "/webhooks/twilio/inbound/"


@pytest.fixture
def inbound_url(settings, live_server):
    settings.TWILIO_INBOUND_URL = ""  # signed for the request's own URL
    return f"{live_server.url}{PATH}"


@pytest.fixture
def patient(make_patient):
    return make_patient(channels=["email", "sms", "whatsapp"], phone=PHONE, name="Grace Hopper")


def text(twilio, url, body, whatsapp=False):
    """The patient texts us; returns our answers' texts (empty when we answered nothing)."""
    sender, to = (f"whatsapp:{PHONE}", WHATSAPP_NUMBER) if whatsapp else (PHONE, SMS_NUMBER)
    posted = twilio.send_inbound(url, sender, body, to)
    assert posted.status == 200, posted.body
    return [m.text for m in ElementTree.fromstring(posted.body).iter("Message")]


def reload(patient):
    return Patient.objects.get(pk=patient.pk)


@pytest.mark.parametrize("body", ["C", " c ", "Confirm", "C O N F I R M\n"])
def test_c_or_confirm_confirms_the_next_appointment_and_says_which(twilio, inbound_url, book, patient, body):
    later = book(patient, starts_in=timedelta(days=10), provider="Dr. Later")
    sooner = book(patient, starts_in=timedelta(days=3), provider="Dr. Sooner")

    (answer,) = text(twilio, inbound_url, body)

    sooner.refresh_from_db(), later.refresh_from_db()
    assert sooner.confirmed_at is not None and later.confirmed_at is None
    assert "Dr. Sooner" in answer and "confirmed" in answer
    assert InboundMessage.objects.get().action == "confirmed"


def test_confirm_with_no_upcoming_appointment_says_so(twilio, inbound_url, patient):
    (answer,) = text(twilio, inbound_url, "C")

    assert "no upcoming appointment" in answer


@pytest.mark.parametrize("word", ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT", "REVOKE", "OPTOUT"])
def test_sms_opt_out_word_opts_out_of_sms_and_leaves_the_answer_to_twilio(twilio, inbound_url, patient, word):
    assert text(twilio, inbound_url, word) == []

    assert reload(patient).opted_out == ["sms"]


def test_after_stop_no_sms_goes_but_email_still_does(celery_worker, twilio, inbound_url, book, patient):
    text(twilio, inbound_url, "STOP")

    appointment = book(patient)

    rows = settled(appointment.notifications.filter(kind="booking_confirmation"))
    assert {r.channel: r.status for r in rows} == {"email": "sent", "sms": "skipped", "whatsapp": "sent"}
    assert twilio.sent_to(PHONE) == []


def test_whatsapp_opt_out_word_opts_out_of_whatsapp_and_answers(twilio, inbound_url, patient):
    (answer,) = text(twilio, inbound_url, "stop", whatsapp=True)

    assert reload(patient).opted_out == ["whatsapp"]
    assert "START" in answer


@pytest.mark.parametrize("word", ["START", "yes", "Unstop"])
def test_opt_in_word_takes_the_channel_out_of_opted_out(twilio, inbound_url, patient, word):
    text(twilio, inbound_url, "STOP")
    text(twilio, inbound_url, "STOP", whatsapp=True)

    assert text(twilio, inbound_url, word) == []
    assert reload(patient).opted_out == ["whatsapp"]


@pytest.mark.parametrize("word", ["HELP", "info"])
def test_help_on_whatsapp_gets_the_help_text_and_on_sms_twilio_answers(twilio, inbound_url, patient, word):
    (answer,) = text(twilio, inbound_url, word, whatsapp=True)

    assert "Reply C to confirm" in answer
    assert text(twilio, inbound_url, word) == []
    assert reload(patient).opted_out == []


def test_other_text_is_kept_for_staff_and_answered_with_how_to_reply(twilio, inbound_url, patient, admin_client, book):
    (answer,) = text(twilio, inbound_url, "Can I bring my daughter?")

    message = InboundMessage.objects.get()
    assert (message.patient, message.action, message.channel) == (patient, "kept_for_staff", "sms")
    assert "Reply C to confirm" in answer
    assert "Can I bring my daughter?" in admin_client.get("/admin/notifications/inboundmessage/").text
    assert "Can I bring my daughter?" in admin_client.get(f"/admin/appointments/patient/{patient.pk}/change/").text


def test_unknown_number_gets_a_polite_answer_and_changes_nothing(twilio, inbound_url, book, patient):
    appointment = book(patient)
    posted = twilio.send_inbound(inbound_url, "+14155550999", "STOP", SMS_NUMBER)

    (answer,) = [m.text for m in ElementTree.fromstring(posted.body).iter("Message")]
    assert "could not find this number" in answer
    assert reload(patient).opted_out == []
    appointment.refresh_from_db()
    assert appointment.confirmed_at is None
    assert InboundMessage.objects.get().action == "unknown_sender"


def test_whatsapp_message_opens_the_session_for_free_form_text(
    celery_worker, settings, twilio, inbound_url, book, patient
):
    settings.TWILIO_CONTENT_SIDS = {}
    text(twilio, inbound_url, "Hello", whatsapp=True)
    assert reload(patient).whatsapp_session_open()

    appointment = book(patient)

    (row,) = settled(appointment.notifications.filter(kind="booking_confirmation", channel="whatsapp"))
    assert row.status == "sent"
    (request,) = twilio.sent_to(f"whatsapp:{PHONE}")
    assert "Dr. Ada Lovelace" in request.body


def test_send_refused_with_21610_opts_the_patient_out_of_that_channel(celery_worker, book, make_patient):
    patient = make_patient(channels=["sms"], phone="+15005550004")  # Twilio's unsubscribed test number

    appointment = book(patient)

    (row,) = settled(appointment.notifications.filter(channel="sms", kind="booking_confirmation"))
    assert (row.status, row.error_code) == ("failed", "21610")
    wait_for(lambda: reload(patient).opted_out == ["sms"])
    wait_for(lambda: Notification.objects.filter(fallback_for=row, channel="email").exists())


def test_stop_at_twilio_then_a_send_refused_keeps_the_patient_opted_out(
    celery_worker, twilio, inbound_url, book, patient
):
    """Twilio blocks our number's SMS to a patient who texted STOP (21610) even if our record
    of it were lost: the refusal opts them out again."""
    text(twilio, inbound_url, "STOP")
    Patient.objects.filter(pk=patient.pk).update(opted_out=[])

    appointment = book(patient)

    (row,) = settled(appointment.notifications.filter(channel="sms", kind="booking_confirmation"))
    assert row.error_code == "21610"
    wait_for(lambda: reload(patient).opted_out == ["sms"])


def test_the_same_message_posted_twice_acts_once(twilio, inbound_url, patient):
    params = inbound_params(twilio.account_sid, PHONE, SMS_NUMBER, "Running late")
    first = twilio.webhooks.post(inbound_url, params, idempotency_header())
    again = twilio.webhooks.post(inbound_url, params, idempotency_header())

    assert (first.status, again.status) == (200, 200)
    assert InboundMessage.objects.count() == 1
    assert "<Message>" not in again.body


def test_inbound_without_a_valid_signature_is_refused(client, patient):
    response = client.post(PATH, {"MessageSid": "SM" + "a" * 32, "From": PHONE, "Body": "STOP"})

    assert response.status_code == 403
    assert reload(patient).opted_out == []
    assert not InboundMessage.objects.exists()


def test_whatsapp_session_closes_after_24_hours(patient):
    patient.whatsapp_last_inbound_at = timezone.now() - timedelta(hours=24, seconds=1)

    assert not patient.whatsapp_session_open()


def signed_post(client, params, settings):
    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(f"http://testserver{PATH}", params)
    return client.post(PATH, params, headers={"X-Twilio-Signature": signature})


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"From": "+1 415 555"}, "From"),
        ({"From": "whatsapp:+١٤١٥٥٥٥٠١٨٨"}, "From"),
        ({"MessageSid": "SM1"}, "MessageSid"),
    ],
    ids=["not-e164", "not-ascii-digits", "bad-sid"],
)
def test_signed_inbound_with_a_bad_field_is_400_naming_it(client, settings, patient, fields, field):
    params = {"MessageSid": "SM" + "b" * 32, "From": PHONE, "To": SMS_NUMBER, "Body": "STOP", **fields}

    response = signed_post(client, params, settings)

    assert response.status_code == 400
    assert field in response.json()
    assert reload(patient).opted_out == [] and not InboundMessage.objects.exists()


def test_signed_inbound_with_nul_characters_is_kept_without_them(client, settings, patient):
    params = {"MessageSid": "SM" + "c" * 32, "From": PHONE, "To": SMS_NUMBER + "\x00", "Body": "late\x00 by 5"}

    response = signed_post(client, params, settings)

    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    assert InboundMessage.objects.get().body == "late by 5"


def test_answer_goes_in_the_patients_language(twilio, inbound_url, book, make_patient):
    patient = make_patient(channels=["sms"], phone=PHONE, name="Ana", language="es")
    book(patient, starts_in=timedelta(days=3))

    (confirmed,) = text(twilio, inbound_url, "c")
    (kept,) = text(twilio, inbound_url, "¿Puedo llegar tarde?")

    assert confirmed.startswith("Gracias, Ana: su cita con Dr. Ada Lovelace del ") and "confirmada" in confirmed
    assert " de " in confirmed.split(" del ")[1]  # the date in Spanish: "martes 8 de diciembre de 2026"
    assert "la clínica leerá su mensaje" in kept


@pytest.mark.parametrize("sender", ["+882345678901", "whatsapp:+882345678901"])
def test_a_number_outside_the_allowed_countries_gets_no_answer(twilio, inbound_url, sender):
    to = WHATSAPP_NUMBER if sender.startswith("whatsapp:") else SMS_NUMBER

    posted = twilio.send_inbound(inbound_url, sender, "HELP", to)

    assert posted.status == 200, posted.body
    assert list(ElementTree.fromstring(posted.body).iter("Message")) == []
    assert InboundMessage.objects.get().from_number == sender  # kept for staff all the same
