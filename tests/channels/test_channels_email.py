"""Email: the message's parts, and how SMTP replies are classified, against a small SMTP server
on loopback whose replies each test scripts (4xx temporary, 5xx permanent)."""

import socket
import socketserver
import threading
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from django.core import mail
from icalendar import Calendar

from notifications.channels import session
from notifications.messages.rendering import render
from notifications.models import Notification
from notifications.outbox.delivery import send_notification, send_notifications
from notifications.outbox.sweeps import sweep

SMTP_BACKEND = "notifications.channels.email.SMTPBackend"  # EMAIL_BACKEND=smtp


class ScriptedSMTP(socketserver.ThreadingTCPServer):
    """Speaks just enough SMTP for smtplib. `replies` overrides the answer to a command
    (GREETING, EHLO, MAIL, RCPT, DATA, or END for the end of the message data); `refused`
    maps recipients to the RCPT answer refusing them. It counts the connections it accepted."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, refused=None, **replies):
        self.replies = replies
        self.refused = refused or {}
        self.messages = []
        self.commands = []
        self.connections = 0
        super().__init__(("127.0.0.1", 0), SMTPHandler)
        # A short poll so that stop() (shutdown waits for one poll) does not cost half a second a test.
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


class SMTPHandler(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        server = self.server
        server.connections += 1
        self.reply(server.replies.get("GREETING", "220 standin.example ESMTP"))
        if not server.replies.get("GREETING", "220").startswith("220"):
            return
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].split(":", 1)[0].upper()
            server.commands.append(line)
            if verb in ("EHLO", "HELO"):
                self.reply(server.replies.get("EHLO", "250 standin.example"))
            elif verb == "MAIL":
                self.reply(server.replies.get("MAIL", "250 2.1.0 OK"))
            elif verb == "RCPT":
                recipient = line.partition("<")[2].partition(">")[0]
                self.reply(server.refused.get(recipient) or server.replies.get("RCPT", "250 2.1.5 OK"))
            elif verb == "DATA":
                answer = server.replies.get("DATA", "354 End data with <CR><LF>.<CR><LF>")
                self.reply(answer)
                if answer.startswith("354"):
                    data = []
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    server.messages.append(b"".join(data))
                    self.reply(server.replies.get("END", "250 2.0.0 queued"))
            elif verb == "RSET" or verb == "NOOP":
                self.reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 command not recognised")


@pytest.fixture
def smtp(settings):
    servers = []

    def start(refused=None, **replies):
        server = ScriptedSMTP(refused, **replies)
        servers.append(server)
        settings.EMAIL_BACKEND = SMTP_BACKEND
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        return server

    yield start
    for server in servers:
        server.stop()


def send_email_confirmation(book, make_patient, **patient_fields):
    appointment = book(make_patient(channels=["email"], **patient_fields), starts_in=timedelta(days=7))
    row = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="email")
    send_notification(row.pk)
    row.refresh_from_db()
    return row


def test_email_has_text_body_html_alternative_and_subject_naming_the_provider(book, make_patient):
    row = send_email_confirmation(book, make_patient, name="Grace Hopper", email="grace@example.com")

    assert row.status == "sent"
    (email,) = mail.outbox
    assert email.to == ["grace@example.com"]
    assert "Dr. Ada Lovelace" in email.subject
    assert "Dear Grace Hopper" in email.body and "<p>" not in email.body
    (html, mimetype), (_, calendar_mimetype) = email.alternatives
    assert mimetype == "text/html"
    assert calendar_mimetype == "text/calendar; method=REQUEST"
    assert ">Dear Grace Hopper,</p>" in html and "Dr. Ada Lovelace" in html
    assert email.extra_headers["Message-ID"].strip("<>") == row.provider_message_id


def test_smtp_accepted_message_is_sent_as_multipart_text_html_and_calendar(book, make_patient, smtp):
    server = smtp()

    row = send_email_confirmation(book, make_patient, email="grace@example.com")

    assert row.status == "sent", row.last_error
    assert "rcpt to:<grace@example.com>" in [c.lower() for c in server.commands]
    (raw,) = server.messages
    message = message_from_bytes(raw)
    assert message.get_content_type() == "multipart/alternative"
    parts = message.get_payload()
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html", "text/calendar"]
    assert parts[2].get_param("method") == "REQUEST"
    assert message["Message-ID"].strip("<>") == row.provider_message_id
    assert "Dr. Ada Lovelace" in message["Subject"]


def test_a_spanish_confirmation_a_batch_sends_over_smtp_reads_as_rendered(book, make_patient, smtp):
    server = smtp()
    patient = make_patient(channels=["email"], language="es", timezone="Europe/Madrid", name="Begoña Núñez")
    appointment = book(patient, provider="Dra. Ana Torres", location="Clínica Calle Mayor, sala 2")
    row = Notification.objects.get(appointment=appointment, kind="booking_confirmation", channel="email")

    send_notifications([row.pk])

    row.refresh_from_db()
    assert row.status == "sent", row.last_error
    (raw,) = server.messages
    assert raw.isascii()  # accents quoted-printable, not 8bit: any server takes it
    message = message_from_bytes(raw, policy=policy.default)
    rendered = render(row)
    assert "está confirmada" in message["Subject"]
    assert message["Subject"] == rendered.subject
    assert message["Message-ID"].strip("<>") == row.provider_message_id
    plain, html, calendar = message.iter_parts()
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert "Begoña Núñez" in rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html
    (event,) = Calendar.from_ical(calendar.get_content()).events
    assert str(event["summary"]) == "Cita con Dra. Ana Torres"
    assert str(event["location"]) == "Clínica Calle Mayor, sala 2"


def test_other_email_is_sent_over_smtp_as_django_builds_it(smtp, settings):
    server = smtp()

    mail.send_mail("Confirme su correo electrónico", "Código: 123456", None, ["grace@example.com"])

    (raw,) = server.messages
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == "Confirme su correo electrónico"
    assert message.get_content().strip() == "Código: 123456"
    assert message["From"] == settings.DEFAULT_FROM_EMAIL


@pytest.mark.parametrize(
    ("replies", "code"),
    [
        ({"RCPT": "451 4.3.0 Mailbox temporarily unavailable"}, "451"),
        ({"MAIL": "452 4.3.1 Insufficient system storage"}, "452"),
        ({"END": "421 4.7.0 Try again later"}, "421"),
        ({"GREETING": "421 4.3.2 Service not available"}, "421"),
        ({"MAIL": "530 5.7.0 Authentication required"}, "530"),
    ],
    ids=["rcpt-451", "mail-452", "data-421", "greeting-421", "auth-530"],
)
def test_smtp_temporary_failure_is_transient(book, make_patient, smtp, replies, code):
    smtp(**replies)

    row = send_email_confirmation(book, make_patient)

    assert row.status == "failed"
    assert row.next_attempt_at is not None and not row.is_dead
    assert row.error_code == code
    assert row.last_error.startswith(f"SMTP {code}")


@pytest.mark.parametrize(
    ("replies", "code"),
    [
        ({"RCPT": "550 5.1.1 No such user here"}, "550"),
        ({"RCPT": "553 5.1.3 Bad recipient address syntax"}, "553"),
        ({"END": "554 5.7.1 Message rejected as spam"}, "554"),
    ],
    ids=["rcpt-550", "rcpt-553", "data-554"],
)
def test_smtp_permanent_failure_fails_at_once(book, make_patient, smtp, replies, code):
    smtp(**replies)

    row = send_email_confirmation(book, make_patient)

    assert row.status == "failed"
    assert row.next_attempt_at is None and row.is_dead
    assert row.error_code == code
    assert "SMTP " + code in row.last_error
    # An email that failed for good goes once by SMS to the patient's phone (issue 29).
    (fallback,) = Notification.objects.filter(fallback_for=row)
    assert (fallback.channel, fallback.recipient) == ("sms", row.patient.phone)


def test_smtp_permanent_failure_without_a_phone_has_nothing_to_fall_back_to(book, make_patient, smtp):
    smtp(RCPT="550 5.1.1 No such user here")

    row = send_email_confirmation(book, make_patient, phone="")

    assert row.is_dead
    assert not Notification.objects.filter(fallback_for=row).exists()


def test_unreachable_smtp_server_is_transient(book, make_patient, settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = SMTP_BACKEND
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port

    row = send_email_confirmation(book, make_patient)

    assert row.status == "failed"
    assert row.next_attempt_at is not None
    assert "SMTP" in row.last_error


def email_confirmations(book, make_patient, *addresses):
    """Booking confirmations by email, one to each address, in that order."""
    return [
        Notification.objects.get(
            appointment=book(make_patient(channels=["email"], email=address)), kind="booking_confirmation"
        )
        for address in addresses
    ]


def quits(server):
    return sum(1 for command in server.commands if command.upper() == "QUIT")


def test_a_batch_sends_its_emails_on_one_connection_per_send_thread_and_closes_it(book, make_patient, smtp, settings):
    settings.NOTIFICATIONS_SEND_THREADS = 1
    server = smtp()
    rows = email_confirmations(book, make_patient, "a@example.com", "b@example.com", "c@example.com")

    send_notifications([row.pk for row in rows])

    assert len(server.messages) == 3
    assert server.connections == 1
    assert quits(server) == 1  # closed when the batch ended


def test_after_an_smtp_error_the_thread_sends_on_a_new_connection(book, make_patient, smtp, settings):
    settings.NOTIFICATIONS_SEND_THREADS = 1
    server = smtp(refused={"bad@example.com": "550 5.1.1 No such user here"})
    rows = email_confirmations(book, make_patient, "a@example.com", "bad@example.com", "c@example.com")

    send_notifications([row.pk for row in rows])

    assert [Notification.objects.get(pk=row.pk).status for row in rows] == ["sent", "failed", "sent"]
    assert len(server.messages) == 2
    assert server.connections == 2
    assert quits(server) == 2  # the one dropped after the error, and the batch's last


def test_each_batch_opens_its_own_connections(book, make_patient, smtp, settings):
    settings.NOTIFICATIONS_SEND_THREADS = 1
    server = smtp()
    first, second = email_confirmations(book, make_patient, "a@example.com", "b@example.com")

    send_notifications([first.pk])
    send_notifications([second.pk])

    assert len(server.messages) == 2
    assert server.connections == 2
    assert quits(server) == 2


def test_a_sweeps_batches_follow_one_another_on_the_connections_of_its_send_threads(book, make_patient, smtp, settings):
    settings.NOTIFICATIONS_SEND_THREADS = 2
    settings.NOTIFICATIONS_SWEEP_BATCH_SIZE = 2
    server = smtp()
    email_confirmations(book, make_patient, *(f"patient{i}@example.com" for i in range(7)))

    report = sweep()

    assert report.outcomes["sent"] == 7 and len(server.messages) == 7
    assert server.connections <= 2  # not two for each of its four batches
    assert quits(server) == server.connections  # all closed when the sweep ended


def test_a_send_thread_opens_a_fresh_connection_after_its_own_sat_idle(book, make_patient, smtp, settings, monkeypatch):
    """A server may have closed a connection left unused (SMTP servers time idle ones out)."""
    settings.NOTIFICATIONS_SEND_THREADS = 1
    monkeypatch.setattr(session, "IDLE_SECONDS", 0.0)
    server = smtp()
    rows = email_confirmations(book, make_patient, "a@example.com", "b@example.com")

    send_notifications([row.pk for row in rows])

    assert len(server.messages) == 2
    assert server.connections == 2
    assert quits(server) == 2
