"""Logs: each send is one structured line (JSON in production) with the row's ids, channel,
outcome, attempt and latency; no full phone number reaches a log, only its last four digits.

The records are captured by a handler built as settings.LOGGING builds the console handler
(its JSON formatter and its phone-masking filter), attached where that one is: the root logger."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string

from config.celery import app as project_app
from config.logging import JsonFormatter, MaskPhoneNumbers, mask_phone_numbers
from notifications.channels.text import send_one_off_sms
from notifications.outbox.delivery import send_notification
from tests.conftest import settled

ROOT = Path(__file__).resolve().parents[2]
PATIENT_PHONE = "+14155550123"
# Twilio's magic test number: the stand-in refuses it with 21211, naming the number in the message.
INVALID_PHONE = "+15005550001"


@pytest.fixture
def json_log():
    """Everything logged at DEBUG and above anywhere, as the production console handler writes it."""
    console = django_settings.LOGGING["handlers"]["console"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(import_string(django_settings.LOGGING["formatters"]["json"]["()"])())
    for name in console["filters"]:
        handler.addFilter(import_string(django_settings.LOGGING["filters"][name]["()"])())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    handler.text = stream.getvalue
    handler.lines = lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous_level)


def booking_confirmation(book, make_patient, phone, channels=("sms",)):
    appointment = book(make_patient(channels=list(channels), phone=phone))
    return appointment.notifications.get(kind="booking_confirmation", channel="sms")


def send_lines(json_log, row):
    return [line for line in json_log.lines() if line.get("notification_id") == row.pk]


# One line per send.


def test_production_console_handler_writes_json_through_the_masking_filter():
    logging_config = django_settings.LOGGING
    assert import_string(logging_config["formatters"]["json"]["()"]) is JsonFormatter
    filters = [
        import_string(logging_config["filters"][name]["()"])
        for name in logging_config["handlers"]["console"]["filters"]
    ]
    assert MaskPhoneNumbers in filters


def test_a_send_logs_one_json_line_with_its_fields(json_log, book, make_patient, twilio):
    row = booking_confirmation(book, make_patient, PATIENT_PHONE)

    assert send_notification(row.pk) == "sent"

    [line] = send_lines(json_log, row)
    assert line["appointment_id"] == row.appointment_id
    assert line["channel"] == "sms"
    assert line["outcome"] == "sent"
    assert line["attempt"] == 1
    assert isinstance(line["latency_ms"], (int, float)) and line["latency_ms"] >= 0
    assert line["level"] == "INFO" and line["logger"] == "notifications.outbox.delivery"


def test_a_permanent_failure_logs_one_json_line_with_its_outcome(json_log, book, make_patient, twilio):
    row = booking_confirmation(book, make_patient, INVALID_PHONE)

    assert send_notification(row.pk) == "failed"

    [line] = send_lines(json_log, row)
    assert line["outcome"] == "failed"
    assert line["attempt"] == 1
    assert str(line["error_code"]) == "21211"


def test_a_send_through_the_worker_logs_one_json_line(celery_worker, json_log, book, make_patient, twilio):
    appointment = book(make_patient(channels=["sms"], phone=PATIENT_PHONE))
    [row] = settled(appointment.notifications.filter(kind="booking_confirmation"))
    assert row.status == "sent"

    [line] = send_lines(json_log, row)
    assert (line["appointment_id"], line["channel"], line["outcome"], line["attempt"]) == (
        appointment.pk,
        "sms",
        "sent",
        1,
    )
    assert "latency_ms" in line


def test_log_format_json_makes_the_console_handler_write_json(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "LOG_"))}
    env.update(LOG_FORMAT="json", DATABASE_URL=f"sqlite:///{tmp_path / 'log.sqlite3'}")
    script = (
        "import logging; "
        "logging.getLogger('notifications.outbox.delivery').info("
        "'notification %s %s', 7, 'sent', extra={'notification_id': 7, 'outcome': 'sent'}); "
        f"logging.getLogger('notifications').warning('texting %s', '{PATIENT_PHONE}')"
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    lines = {record["logger"]: record for record in records}
    assert lines["notifications.outbox.delivery"]["notification_id"] == 7
    assert lines["notifications.outbox.delivery"]["outcome"] == "sent"
    assert lines["notifications"]["message"] == "texting +…0123"
    assert PATIENT_PHONE not in result.stderr


# No full phone number in any log.


def test_no_log_line_carries_the_full_phone_number_of_a_sent_message(json_log, book, make_patient, twilio, caplog):
    caplog.set_level(logging.DEBUG)
    row = booking_confirmation(book, make_patient, PATIENT_PHONE, channels=("sms", "email"))

    assert send_notification(row.pk) == "sent"

    assert json_log.lines()  # something was logged
    assert PATIENT_PHONE not in json_log.text()
    assert not [r for r in caplog.records if PATIENT_PHONE in r.getMessage()]


def test_no_log_line_carries_the_number_of_a_permanent_failure(json_log, book, make_patient, twilio, caplog):
    caplog.set_level(logging.DEBUG)
    row = booking_confirmation(book, make_patient, INVALID_PHONE, channels=("sms", "email"))

    assert send_notification(row.pk) == "failed"
    row.refresh_from_db()
    assert INVALID_PHONE in row.last_error  # the row keeps Twilio's message for staff

    assert PATIENT_PHONE not in json_log.text() and INVALID_PHONE not in json_log.text()
    assert not [r for r in caplog.records if INVALID_PHONE in r.getMessage()]


def test_no_log_line_through_the_worker_carries_a_full_phone_number(
    celery_worker, json_log, book, make_patient, twilio
):
    sent = book(make_patient(channels=["sms", "email"], phone=PATIENT_PHONE))
    failed = book(make_patient(channels=["sms"], phone=INVALID_PHONE))
    settled(sent.notifications.filter(kind="booking_confirmation"))
    [sms] = settled(failed.notifications.filter(kind="booking_confirmation", channel="sms"))
    assert sms.status == "failed"
    settled(failed.notifications.filter(kind="booking_confirmation", channel="email"))  # the fallback

    assert json_log.lines()
    assert PATIENT_PHONE not in json_log.text()
    assert INVALID_PHONE not in json_log.text()


@pytest.fixture
def twilio_request_logging():
    """The twilio client's own request log (URL and headers), silenced by settings, switched on."""
    logger = logging.getLogger("twilio.http_client")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield
    logger.setLevel(previous)


def test_twilio_client_request_log_carries_no_full_number_when_switched_on(
    json_log, twilio_request_logging, book, make_patient, twilio
):
    row = booking_confirmation(book, make_patient, PATIENT_PHONE)

    assert send_notification(row.pk) == "sent"

    assert [line for line in json_log.lines() if line["logger"] == "twilio.http_client"]
    assert PATIENT_PHONE not in json_log.text()


def test_a_number_in_a_log_message_is_masked_to_its_last_four_digits(json_log):
    logging.getLogger("notifications.channels.text").warning("Twilio refused %s: %s", PATIENT_PHONE, "not mobile")

    [line] = [line for line in json_log.lines() if line["logger"] == "notifications.channels.text"]
    assert line["message"] == "Twilio refused +…0123: not mobile"


def test_a_number_in_a_logged_exception_is_masked(json_log):
    try:
        raise ValueError(f"The 'To' number {INVALID_PHONE} is not a valid phone number.")
    except ValueError:
        logging.getLogger("notifications.outbox.delivery").exception("unexpected error while sending")

    [line] = [line for line in json_log.lines() if line["message"] == "unexpected error while sending"]
    assert INVALID_PHONE not in line["exception"]
    assert "+…0001" in line["exception"]


def test_a_number_in_a_logged_exception_is_masked_in_the_plain_format_too():
    """Development logs (LOG_FORMAT=plain): the console handler's filter and plain formatter."""
    logging_config = django_settings.LOGGING
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(logging_config["formatters"]["plain"]["format"]))
    for name in logging_config["handlers"]["console"]["filters"]:
        handler.addFilter(import_string(logging_config["filters"][name]["()"])())
    logger = logging.getLogger("tests.plain_exception")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError(f"The 'To' number {INVALID_PHONE} is not a valid phone number.")
        except ValueError:
            logger.exception("unexpected error while sending")
    finally:
        logger.removeHandler(handler)

    assert "ValueError" in stream.getvalue()
    assert INVALID_PHONE not in stream.getvalue()
    assert "+…0001" in stream.getvalue()


# mask_phone_numbers


@pytest.mark.parametrize(
    "text, masked",
    [
        ("+14155550123", "+…0123"),
        ("call +14155550123 now", "call +…0123 now"),
        ("whatsapp:+14155550123", "whatsapp:+…0123"),
        ("+447700900123 and +15005550001", "+…0123 and +…0001"),
        ("+861012345678901", "+…8901"),  # 15 digits, the E.164 maximum
        ("+3212345678", "+…5678"),
    ],
)
def test_mask_phone_numbers_keeps_only_the_last_four_digits(text, masked):
    assert mask_phone_numbers(text) == masked


@pytest.mark.parametrize("text", ["notification 42 sent", "SM0123456789abcdef", "attempt 3 after 1500 ms", ""])
def test_mask_phone_numbers_leaves_text_without_numbers_alone(text):
    assert mask_phone_numbers(text) == text


# What an operator reads in a plain (development) log.


def test_a_send_logs_one_plain_line_naming_what_was_sent_and_how(caplog, book, make_patient, twilio):
    row = booking_confirmation(book, make_patient, PATIENT_PHONE)

    with caplog.at_level(logging.INFO, logger="notifications.outbox.delivery"):
        assert send_notification(row.pk) == "sent"

    row.refresh_from_db()
    [line] = [r.getMessage() for r in caplog.records if r.name == "notifications.outbox.delivery"]
    assert line.startswith(f"notification {row.pk} sms booking_confirmation sent in ")
    assert " ms" in line and f"provider id {row.provider_message_id}" in line


def test_console_text_messages_are_logged_at_info_with_the_number_masked(caplog, capsys, settings):
    settings.SMS_BACKEND = "console"

    with caplog.at_level(logging.INFO):
        send_one_off_sms(PATIENT_PHONE, "Your code is 123456")

    [record] = [r for r in caplog.records if "Your code is 123456" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert PATIENT_PHONE not in format_as_the_console_does(record)
    assert PATIENT_PHONE[-4:] in format_as_the_console_does(record)
    assert PATIENT_PHONE not in capsys.readouterr().out


def test_console_emails_are_logged_at_info(caplog, capsys, settings):
    settings.EMAIL_BACKEND = "notifications.channels.email.ConsoleEmailBackend"

    with caplog.at_level(logging.INFO):
        send_mail("Your appointment", "See you on Monday", None, ["grace@example.com"])

    [record] = [r for r in caplog.records if "See you on Monday" in r.getMessage()]
    assert record.levelno == logging.INFO and "grace@example.com" in record.getMessage()
    assert "See you on Monday" not in capsys.readouterr().out


def test_the_console_email_backend_is_the_logging_one():
    from config.settings import _EMAIL_BACKENDS

    assert _EMAIL_BACKENDS["console"] == "notifications.channels.email.ConsoleEmailBackend"


def test_the_worker_logs_what_it_prints_at_info():
    assert project_app.conf.worker_redirect_stdouts_level == "INFO"


def format_as_the_console_does(record):
    """The record's message after the console handler's filters (they mask in place)."""
    for name in django_settings.LOGGING["handlers"]["console"]["filters"]:
        import_string(django_settings.LOGGING["filters"][name]["()"])().filter(record)
    return record.getMessage()
