"""The email service behind anymail, as the simulation's third provider: what it reports of the
emails the edge saw go out (delivered, opened, complained, unsubscribed, bounced, rejected,
blocked, deferred), repeated and out of order, posted in Postmark's and Mailgun's own payload
shapes to anymail's tracking views (/anymail/<esp>/tracking/) through Django's test client in
this process, with the authentication anymail verifies (basic auth; Mailgun's HMAC signature).
An event names the email by the service's message id (edge.FaultyEmailBackend gives it, as an
anymail backend does) and echoes the message's anymail metadata, as both services do.

The invariants these events imply are checked after every step against what reached each
recipient: a bounced or rejected address gets no more email until the patient's address
changes, a complaint or an unsubscribe stops email to the patient, a row's delivery status is
the highest the service reported (repeats and reordering harmless), a failed email falls back
once to a text channel the patient can be reached on."""

import base64
import hashlib
import hmac
import json

from django.conf import settings
from django.core import mail
from django.test import Client
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from appointments.models import Patient
from notifications.channels import TEXT_CHANNELS
from notifications.inbound.email_receipts import DELIVERY_STATUS
from notifications.models import Channel, Notification
from notifications.outbox.states import DELIVERY_RANK
from tests.simulation import invariants
from tests.simulation.edge import email_row
from tests.simulation.timing import step

WEBHOOK_SECRET = "esp:simulation-webhook-secret"
MAILGUN_SIGNING_KEY = "mailgun-signing-key-for-the-simulation"
ANYMAIL_SETTINGS = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}

# What the service may report of an email, and the one fate each tells (None: no fate, any time).
# A message has one fate: a report that contradicts it is posted as the fate's own report.
FATE = {
    "delivered": "delivered",
    "opened": "delivered",
    "complained": "delivered",
    "unsubscribed": "delivered",
    "bounced": "bounced",
    "rejected": "rejected",
    "blocked": "blocked",  # the receiving side refused the clinic's mail: the address is fine
    "deferred": None,  # a soft bounce: the service keeps trying
}
EVENTS = list(FATE)
DEAD_ADDRESS = ("bounced", "rejected")
FALLS_BACK = ("bounced", "rejected", "blocked")
OPTS_OUT = ("complained", "unsubscribed")
ARRIVED = ("delivered", "opened", "complained", "unsubscribed")
# The delivery status each report means (anymail's event type for it, as our handler maps it).
ANYMAIL_TYPE = {"blocked": "rejected", "deferred": "deferred"}


def _postmark(event, esp_id, to, metadata, event_id, at):
    """Postmark's webhook record for this report (its documented shapes)."""
    at = at.isoformat().replace("+00:00", "Z")
    common = {"MessageID": esp_id, "Metadata": metadata, "MessageStream": "outbound", "ServerID": 23, "Tag": ""}
    if event == "delivered":
        return common | {"RecordType": "Delivery", "Recipient": to, "DeliveredAt": at, "Details": "250 OK"}
    if event == "opened":
        return common | {"RecordType": "Open", "Recipient": to, "ReceivedAt": at, "FirstOpen": True}
    if event == "unsubscribed":
        return common | {
            "RecordType": "SubscriptionChange",
            "Recipient": to,
            "ChangedAt": at,
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
        }
    record, bounce_type = {
        "complained": ("SpamComplaint", "SpamComplaint"),
        "bounced": ("Bounce", "HardBounce"),
        "rejected": ("Bounce", "BadEmailAddress"),
        "blocked": ("Bounce", "Blocked"),
        "deferred": ("Bounce", "SoftBounce"),
    }[event]
    return common | {
        "RecordType": record,
        "ID": event_id,
        "Type": bounce_type,
        "Email": to,
        "BouncedAt": at,
        "Description": f"{bounce_type} reported by the simulation",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    }


def _mailgun(event, esp_id, to, metadata, event_id, at):
    """Mailgun's JSON webhook for this report, signed with the webhook signing key (the token
    is the event's id to anymail, so a repeated webhook carries the same)."""
    data = {
        "id": f"ev{event_id}",
        "timestamp": at.timestamp(),
        "recipient": to,
        "message": {"headers": {"message-id": f"<{esp_id}>", "to": to, "subject": "Your appointment"}},
        "user-variables": metadata,
        "tags": [],
    }
    if event in ("delivered", "opened", "complained", "unsubscribed"):
        data["event"] = event
    elif event == "rejected":
        data |= {"event": "rejected", "reject": {"reason": "Recipient address is invalid"}}
    else:  # bounced, deferred (blocked is Postmark's word only: it never comes here)
        data |= {
            "event": "failed",
            "severity": "permanent" if event == "bounced" else "temporary",
            "reason": "bounce" if event == "bounced" else "generic",
            "delivery-status": {"code": 550 if event == "bounced" else 421, "message": "5.1.1 No such user"},
        }
    timestamp, token = str(int(at.timestamp())), f"{event_id:050x}"
    signature = hmac.new(MAILGUN_SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": data}


PAYLOADS = {"postmark": _postmark, "mailgun": _mailgun}


def post(esp, payload):
    """POST one webhook to anymail's view, as the service does; fails unless it answers 200."""
    secret = base64.b64encode(settings.ANYMAIL["WEBHOOK_SECRET"].encode()).decode()
    response = Client().post(
        f"/anymail/{esp}/tracking/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {secret}",
    )
    assert response.status_code == 200, (esp, payload, response.status_code, response.content)


class EmailService:
    """What the service said, so far, of the run's emails."""

    def __init__(self):
        self.fates = {}  # esp id: the email's fate
        self.posted = {}  # (esp id, event): (esp, payload) last posted, to post again
        self.highest = {}  # esp id: the highest delivery status the service reported
        # (patient id, address) the service bounced or rejected.
        self.dead_addresses = set()
        self.opted_out = set()  # patients who complained or unsubscribed
        self.failed_rows = set()  # rows whose email bounced, was rejected or blocked
        self.events = 0


class EmailServiceRules:
    """The service's reports and the patients' changes of address, for a Simulation (self.esp)."""

    @precondition(lambda self: mail.outbox)
    @rule(
        i=st.integers(0, 15),
        event=st.sampled_from(EVENTS),
        esp=st.sampled_from(list(PAYLOADS)),
        again=st.booleans(),
    )
    @step
    def esp_event(self, i, event, esp, again):
        """The service's report on one email it took; again: the same webhook posted twice."""
        email = mail.outbox[i % len(mail.outbox)]
        esp_id = str(email.anymail_status.message_id)
        if FATE[event] is not None:
            fate = self.esp.fates.setdefault(esp_id, FATE[event])
            event = event if FATE[event] == fate else fate
        if event == "blocked":
            esp = "postmark"  # Mailgun has no such report
        if not (again and (esp_id, event) in self.esp.posted):
            self.esp.events += 1
            metadata = getattr(email, "metadata", None) or {}
            payload = PAYLOADS[esp](event, esp_id, email.to[0], metadata, self.esp.events, self.clock.now)
            self.esp.posted[esp_id, event] = (esp, payload)
        post(*self.esp.posted[esp_id, event])
        self._heard(email, esp_id, event)

    def _heard(self, email, esp_id, event):
        """What the report means for the run's oracle, and what must hold at once."""
        row_id, address = email_row(email), email.to[0]
        patient_id = Notification.objects.filter(pk=row_id).values_list("patient_id", flat=True).first()
        status = DELIVERY_STATUS.get(ANYMAIL_TYPE.get(event, event))
        if status is not None and DELIVERY_RANK[status] > DELIVERY_RANK.get(self.esp.highest.get(esp_id, ""), 0):
            self.esp.highest[esp_id] = status
        if event in ARRIVED:
            self.delivered_rows.add(row_id)
        if event in DEAD_ADDRESS:
            self.esp.dead_addresses.add((patient_id, address))
        if event in FALLS_BACK:
            self.esp.failed_rows.add(row_id)
            # Expected of the row's own message (an earlier copy, sent again when its outcome was
            # lost, says what it says of the address; the row's own message will say the rest).
            recorded = Notification.objects.filter(pk=row_id).values_list("provider_message_id", flat=True).first()
            falls_back_once(row_id, expected=recorded == esp_id)
        if event in OPTS_OUT:
            self.esp.opted_out.add(patient_id)
            opted_out = Patient.objects.get(pk=patient_id).opted_out
            invariants.check(
                Channel.EMAIL in opted_out,
                "email consent",
                f"patient {patient_id} {event} of email {esp_id} and is still opted in to email ({opted_out})",
            )

    @rule(patient=st.sampled_from([0, 1, 3, 5, 6]))
    @step
    def patient_changes_email(self, patient):
        """The patient gives staff a new email address (the old one may have bounced)."""
        patient = self.patients[patient]
        local, domain = patient.email.split("@")
        patient.email = f"{local.split('+')[0]}+{len(mail.outbox)}@{domain}"
        patient.save(update_fields=["email"])
        self.email_changed_at[patient.pk] = self.clock.now

    def check_email(self, new_deliveries):
        """After every step: the service's word stands against what reached each recipient."""
        for delivered in new_deliveries:
            if delivered.provider != "email":
                continue
            patient_id = Notification.objects.filter(pk=delivered.row_id).values_list("patient_id", flat=True).first()
            # Whenever the row was planned: one planned before the report, even one a worker
            # held, is stopped at its hand-out (a step's send starts after the reports before it).
            invariants.check(
                (patient_id, delivered.to) not in self.esp.dead_addresses,
                "undeliverable address",
                f"row {delivered.row_id} emailed {delivered.to}, which the email service reported dead",
            )
            invariants.check(
                patient_id not in self.esp.opted_out,
                "email consent",
                f"row {delivered.row_id} emailed {delivered.to} after patient {patient_id} complained or unsubscribed",
            )
        rows = Notification.objects.filter(channel=Channel.EMAIL, provider_message_id__in=list(self.esp.highest))
        for pk, esp_id, status in rows.values_list("pk", "provider_message_id", "delivery_status"):
            invariants.check(
                status == self.esp.highest[esp_id],
                "receipts move up only",
                f"row {pk} ({esp_id}) has delivery status {status!r}; the service reported {self.esp.highest[esp_id]!r}",
            )
        for row_id in self.esp.failed_rows:
            falls_back_once(row_id, expected=False)


def falls_back_once(row_id, expected):
    """A failed email's message goes once by a text channel: never two fallbacks of a row, and
    (expected: right after the report) one, or the patient's own text row of the same message,
    when the patient has a text channel with a phone they did not opt out of."""
    fallbacks = Notification.objects.filter(fallback_for_id=row_id).count()
    invariants.check(fallbacks <= 1, "falls back once", f"row {row_id} has {fallbacks} fallbacks")
    row = Notification.objects.select_related("patient").filter(pk=row_id).first()
    if not expected or row is None:
        return
    patient = row.patient
    chosen = [channel for channel in TEXT_CHANNELS if channel in patient.channels] or [Channel.SMS]
    if not patient.phone or all(channel in patient.opted_out for channel in chosen):
        return
    by_text = Notification.objects.filter(
        appointment_id=row.appointment_id, kind=row.kind, scheduled_for=row.scheduled_for, channel__in=TEXT_CHANNELS
    )
    invariants.check(
        by_text.exists(),
        "falls back once",
        f"row {row_id} ({row.kind} by email) failed at the email service and nothing goes by text "
        f"(patient {patient.pk}: {patient.channels}, opted out of {patient.opted_out})",
    )
