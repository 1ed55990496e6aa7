"""The simulation: a hypothesis state machine whose rules are the events of a clinic's day and
the failures of its machinery, each a call of the real code the API, the webhooks and the Celery
tasks call (appointments.services, sweeps.sweep, sweeps.reclaim_expired_leases, the webhook
views), in this process and one step at a time, so a run is decided by its seed alone.

A worker is modelled by the steps of delivery.deliver taken apart (claim_due_batch, a row's
_attempt on a send thread, _write of its outcomes), so that a worker can die, or stall while
the world moves on, between any two of them. After every step the invariants
(tests/simulation/invariants.py) are checked against what reached the recipients."""

from datetime import timedelta

from django.conf import settings
from django.core import mail
from django.db import transaction
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from appointments import services
from appointments.models import Appointment, AppointmentStatus, Patient
from notifications.models import Notification
from notifications.outbox import sweeps
from tests.simulation import invariants
from tests.simulation.clinic_systems import ClinicSystems, ClinicSystemsRules, every_event_reached
from tests.simulation.edge import START, Edge, FaultyEmailBackend
from tests.simulation.email_service import EmailService, EmailServiceRules
from tests.simulation.timing import STATS, step
from tests.simulation.webhooks import post_inbound, post_status
from tests.simulation.workers import Worker, WorkerRules

# channels, phone, email ("" for none). An email address outside the patient's channels is
# where a dead (or unaddressable) text message goes instead; the fifth patient has none.
PATIENTS = [
    (["sms", "email"], "+14155550201", "p1@example.com"),
    (["whatsapp", "email"], "+14155550202", "p2@example.com"),
    (["sms"], "+14155550203", "p3@example.com"),
    (["email", "sms", "whatsapp"], "+14155550204", "p4@example.com"),
    (["whatsapp"], "+14155550205", ""),
    # No phone for the text channels chosen: its messages go by email instead (issue 24).
    (["sms", "whatsapp"], "", "p6@example.com"),
    # Email only, with a phone: an email that bounces goes by SMS instead (issue 29).
    (["email"], "+14155550207", "p7@example.com"),
]
# Booked this long ahead: within a reminder's reach, between them, and days away.
BOOK_AHEAD_HOURS = [1.5, 3, 25, 50, 24 * 5]
MOVES_HOURS = [-1, 2, 24, 24 * 5, -24]
CLOCK_STEPS = [1, 20, 61, 600, 3600, 6 * 3600, 24 * 3600]
TWILIO_FAULTS = [
    429,
    500,
    503,
    ("error", 400, 21211, "The 'To' number is not a valid phone number."),
    ("error", 400, 21610, "Attempt to send to unsubscribed recipient"),
    ("error", 400, 21614, "'To' number is not a valid mobile number"),
    "drop",  # accepted, the answer lost (connection closed)
    "late",  # accepted only after the client gave up
    ("slow", 2.3),  # accepted, answered past the client's timeout (TWILIO_HTTP_TIMEOUT 2 s)
]
RECEIPTS = [("sent", None), ("delivered", None), ("undelivered", 30003), ("failed", 30008)]


class Simulation(WorkerRules, EmailServiceRules, ClinicSystemsRules, RuleBasedStateMachine):
    # Set by the fixture (tests/simulation/conftest.py): the stand-in Twilio, the clock, and
    # the clinic's systems' webhook receiver.
    twilio = None
    clock = None
    receiver = None

    def __init__(self):
        super().__init__()
        self.failed = False
        self._atomic = transaction.atomic()
        self._atomic.__enter__()  # rolled back at teardown: each example starts empty
        self.clock.now = START
        self.twilio.reset()
        self.twilio.clock = self.clock.epoch
        FaultyEmailBackend.faults.clear()
        mail.outbox = []
        self.edge = Edge(self.twilio)
        self.esp = EmailService()
        self.email_changed_at = {}  # patient id: when their email address last changed
        self.hooks = ClinicSystems(self.receiver)  # registered before anything happens
        self.patients = [
            Patient.objects.create(name=f"Patient {n}", channels=channels, phone=phone, email=email)
            for n, (channels, phone, email) in enumerate(PATIENTS, 1)
        ]
        self.appointments = []
        self.workers = [Worker(), Worker()]
        self.delivered_rows = set()  # rows whose message a delivered receipt was posted for
        self.unwritten_email_ids = set()  # emails the SMTP server took whose outcome was never written
        self.last_word = {}  # patient id: (STOP or START, the stand-in's request count then)
        self.receipt_tokens = {}  # (sid, status): the idempotency token of its last post
        self.fates = {}  # sid: the final receipt Twilio gave it (a message has one fate)
        STATS["examples"] += 1

    def _appointment(self, i):
        return self.appointments[i % len(self.appointments)]

    # The clinic and its patients. Every run starts with a booking, so that it has rows to send.
    @initialize(patient=st.integers(0, len(PATIENTS) - 1), ahead=st.sampled_from(BOOK_AHEAD_HOURS))
    def first_booking(self, patient, ahead):
        self.book(patient=patient, ahead=ahead)

    @rule(patient=st.integers(0, len(PATIENTS) - 1), ahead=st.sampled_from(BOOK_AHEAD_HOURS))
    @step
    def book(self, patient, ahead):
        appointment = services.book(
            patient=self.patients[patient],
            provider="Dr. Ada Lovelace",
            starts_at=self.clock.now + timedelta(hours=ahead),
            duration_minutes=30,
            location="Room 4",
        )
        self.appointments.append(appointment.pk)

    @precondition(lambda self: self.appointments)
    @rule(i=st.integers(0, 7), hours=st.sampled_from(MOVES_HOURS))
    @step
    def reschedule(self, i, hours):
        appointment = Appointment.objects.get(pk=self._appointment(i))
        starts_at = max(appointment.starts_at + timedelta(hours=hours), self.clock.now + timedelta(minutes=30))
        try:
            services.reschedule(appointment.pk, starts_at=starts_at)
        except services.AppointmentConflict:
            pass  # cancelled: the API answers 409

    @precondition(lambda self: self.appointments)
    @rule(i=st.integers(0, 7))
    @step
    def cancel(self, i):
        services.cancel(self._appointment(i), reason="The patient called")

    @precondition(lambda self: self.appointments)
    @rule(i=st.integers(0, 7))
    @step
    def staff_confirms(self, i):
        try:
            services.confirm(self._appointment(i))
        except services.AppointmentConflict:
            pass

    @rule(patient=st.integers(0, len(PATIENTS) - 1), word=st.sampled_from(["C", "STOP", "START"]))
    @step
    def patient_texts(self, patient, word):
        patient = self.patients[patient]
        if not patient.phone:
            return  # no number to text from
        upcoming = Appointment.objects.filter(
            patient=patient, status=AppointmentStatus.SCHEDULED, starts_at__gt=self.clock.now, confirmed_at=None
        ).order_by("starts_at", "pk")
        expected = upcoming.first()
        post_inbound(self.twilio, patient.phone, word)
        if word == "C" and expected is not None:
            expected.refresh_from_db()
            invariants.check(
                expected.confirmed_at is not None,
                "replies",
                f"C from {patient.phone} left its next unconfirmed appointment {expected.pk} unconfirmed",
            )
        if word != "C":
            self.last_word[patient.pk] = (word, len(self.twilio.requests))

    # The providers.
    @rule(
        patient=st.integers(0, len(PATIENTS) - 1),
        whatsapp=st.booleans(),
        fault=st.sampled_from(TWILIO_FAULTS),
        on_lookup=st.booleans(),
    )
    @step
    def twilio_fault(self, patient, whatsapp, fault, on_lookup):
        """Twilio's next answer to a send to this address, or (on_lookup) a 503 to its next look-up."""
        address = ("whatsapp:" if whatsapp else "") + self.patients[patient].phone
        if on_lookup:
            self.twilio.script_lookups(address, 503)
        else:
            self.twilio.script(address, fault)

    @rule(patient=st.sampled_from([0, 1, 2, 3, 6]), code=st.sampled_from([451, 550]))
    @step
    def email_fault(self, patient, code):
        FaultyEmailBackend.faults[self.patients[patient].email].append(code)

    @precondition(lambda self: self.twilio.accepted)
    @rule(i=st.integers(0, 15), receipt=st.sampled_from(RECEIPTS), again=st.booleans())
    @step
    def receipt(self, i, receipt, again):
        """Twilio's status callback for one of the messages it took; again: the same callback
        posted twice (its idempotency token reused)."""
        message = self.twilio.accepted[i % len(self.twilio.accepted)]
        if receipt[0] != "sent":
            receipt = self.fates.setdefault(message["sid"], receipt)
        status, error_code = receipt
        key = (message["sid"], status)
        token = self.receipt_tokens.get(key) if again else None
        answer = post_status(self.twilio, message, status, error_code, token)
        self.receipt_tokens[key] = answer.token
        if status == "delivered":
            self.delivered_rows.add(answer.row_id)

    # Time, and the machinery.
    @rule(seconds=st.sampled_from(CLOCK_STEPS))
    @step
    def advance_clock(self, seconds):
        self.edge.land_late()  # Twilio takes a late message before our clock moves on
        self.clock.advance(seconds)

    @rule()
    @step
    def sweep(self):
        sweeps.sweep()

    @rule()
    @step
    def reclaim(self):
        sweeps.reclaim_expired_leases()

    @precondition(lambda self: Notification.objects.dead().exists())
    @rule(i=st.integers(0, 7))
    @step
    def staff_retries(self, i):
        dead = list(Notification.objects.dead().order_by("pk").values_list("pk", flat=True))
        Notification.objects.filter(pk=dead[i % len(dead)]).retry()

    @invariant()
    def invariants_hold(self):
        try:
            invariants.after_step(self)
        except BaseException:
            self.failed = True
            raise

    def teardown(self):
        try:
            if not self.failed:
                self.drain()
                self.drain_hooks()
                invariants.after_step(self)
                invariants.at_least_once(self)
                every_event_reached(self.hooks)
            STATS["messages"] += len(self.edge.deliveries())
        finally:
            for worker in self.workers:
                worker.close()
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)

    def check_channels(self, new_deliveries):
        """The email service's and the clinic's systems' invariants (invariants.after_step's)."""
        self.check_email(new_deliveries)
        self.check_hooks()

    def drain(self, rounds=60):
        """Every worker gone, the providers well again, and the clock moved past every lease,
        backoff and due time, sweeping, until nothing is left to do."""
        for w, worker in enumerate(self.workers):
            if worker.rows or worker.outcomes:
                self.worker_dies(w=w)
        self.twilio.reset_scripts()
        FaultyEmailBackend.faults.clear()
        lease = timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS + 1)
        for _ in range(rounds):
            self.edge.land_late()
            sweeps.reclaim_expired_leases()
            sweeps.sweep()
            invariants.after_step(self)
            waiting = Notification.objects.filter(status__in=["pending", "sending", "failed"])
            times = [
                # A pending row put back (held back, or no rate-limit token) is due at next_attempt_at.
                *(
                    max(scheduled, not_before or scheduled)
                    for scheduled, not_before in waiting.filter(status="pending").values_list(
                        "scheduled_for", "next_attempt_at"
                    )
                ),
                *waiting.retrying().values_list("next_attempt_at", flat=True),
                *(t + lease for t in waiting.filter(status="sending").values_list("claimed_at", flat=True)),
            ]
            if not times:
                return
            self.clock.now = max(self.clock.now + timedelta(seconds=1), min(times))
