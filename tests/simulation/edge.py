"""The simulation's outside edge: its clock, its email server, and what reached each recipient.

The clock is the one seam: Django's timezone.now, which the code under test reads directly, is
replaced for the test by a virtual clock that moves only when the simulation says so (the
stand-in Twilio dates its messages by it too). Email goes to Django's locmem outbox through a
backend that refuses on demand as an SMTP server would and, as an email service's anymail backend
does, answers with the service's own message id (anymail_status), which its tracking webhooks
name (tests/simulation/email_service.py). What reached a recipient is read at the edge: the
stand-in Twilio's accepted messages (each tied to its row by the status callback URL, which
carries the row's id) and the outbox (each email tied to its row by its Message-ID)."""

import re
import smtplib
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from anymail.message import AnymailRecipientStatus, AnymailStatus
from django.core import mail
from django.core.mail.backends import locmem

from notifications.channels.text import NOTIFICATION_PARAMETER

# A Monday in winter (GMT = UTC in Europe/London): every run renders the same dates.
START = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
MESSAGE_ID_ROW = re.compile(r"\.notification-(\d+)@")


class VirtualClock:
    """What timezone.now() answers during a simulation."""

    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)

    def epoch(self):
        return self.now.timestamp()


class FaultyEmailBackend(locmem.EmailBackend):
    """Django's locmem backend, but that a refusal scripted for a recipient (an SMTP reply
    code: 4xx comes back later, 5xx never) is raised instead of taking the message, and that a
    message taken gets the email service's id as anymail's backends give it (anymail_status;
    numbered in the run's order, as anymail's own test backend numbers them)."""

    faults = defaultdict(deque)

    def send_messages(self, messages):
        for message in messages:
            script = self.faults[message.to[0]]
            if script:
                code = script.popleft()
                if code >= 500:
                    raise smtplib.SMTPRecipientsRefused({message.to[0]: (code, b"5.1.1 mailbox unavailable")})
                raise smtplib.SMTPResponseException(code, b"4.3.0 try again later")
            status = AnymailStatus()
            esp_id = str(uuid.UUID(int=len(mail.outbox) + 1))  # a Postmark-like MessageID
            status.set_recipient_status({message.to[0]: AnymailRecipientStatus(message_id=esp_id, status="sent")})
            message.anymail_status = status
            super().send_messages([message])
        return len(messages)


def email_row(email):
    """The id of the row that sent this email, read from its Message-ID (-1: none)."""
    match = MESSAGE_ID_ROW.search(email.extra_headers["Message-ID"])
    return int(match[1]) if match else -1


@dataclass(frozen=True)
class Delivered:
    """One message that reached a recipient."""

    row_id: int
    provider: str  # "twilio" or "email"
    to: str
    text: str
    message_id: str
    late: bool = False  # accepted by Twilio only after the client had given up


class Edge:
    """What crossed the stand-ins' edge, in the order it did."""

    def __init__(self, twilio):
        self.twilio = twilio
        self.late_sids = set()
        self.checked = (0, 0, 0)  # Twilio messages, emails and late takings already checked

    def land_late(self):
        self.late_sids |= {message["sid"] for message in self.twilio.land_late()}

    def deliveries(self):
        """Every message accepted by Twilio, then every email, each with its row's id."""
        found = []
        for message in list(self.twilio.accepted):
            query = parse_qs(urlsplit(self.twilio.callback_of(message["sid"])).query)
            row = int(query[NOTIFICATION_PARAMETER][0]) if NOTIFICATION_PARAMETER in query else -1
            late = message["sid"] in self.late_sids
            found.append(Delivered(row, "twilio", message["to"], message["body"], message["sid"], late))
        for email in mail.outbox:
            found.append(Delivered(email_row(email), "email", email.to[0], email.body, email.anymail_status.message_id))
        return found

    def new_deliveries(self):
        """What our code sent since the last call (the after-step check's), as it was sent: the
        messages Twilio accepted and the emails, and a message Twilio took "late" when it was
        taken (a check of what it says belongs to the step that sent it, not to its landing)."""
        every = self.deliveries()
        twilio_seen, email_seen, late_seen = self.checked
        accepted = [d for d in every if d.provider == "twilio"]
        emails = [d for d in every if d.provider == "email"]
        taken_late = list(self.twilio.taken_late)
        new = [d for d in accepted[twilio_seen:] if not d.late] + emails[email_seen:]
        for form in taken_late[late_seen:]:
            query = parse_qs(urlsplit(form.get("StatusCallback", "")).query)
            row = int(query[NOTIFICATION_PARAMETER][0]) if NOTIFICATION_PARAMETER in query else -1
            new.append(Delivered(row, "twilio", form["To"], self.twilio._content_body(form), "", late=True))
        self.checked = (len(accepted), len(emails), len(taken_late))
        return new

    def refusals_to(self, address, code):
        """Indexes of the requests to this address the stand-in refused with this error code."""
        return [
            n
            for n, request in enumerate(list(self.twilio.requests))
            if request.to == address
            and isinstance(request.answer, tuple)
            and request.answer[:3] == ("error", 400, code)
        ]
