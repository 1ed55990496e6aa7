"""Scenario 5, provider faults: the stand-in Twilio answers some recipients slowly (past the
client's timeout), with 429 bursts, with 5xx for a while or for good, or with a permanent
error. Sweeps run until nothing is due. Every row ends `sent`, or dead (`failed` with no retry
time) with the provider's error kept; none is left pending or sending.

A send that times out on our side may still have been accepted by Twilio. The design retries
transient errors, and since an unanswered send (read timeout) is retried by first listing the
recipient's messages, a message Twilio accepted before the retry is not sent again ("timeout").
One Twilio accepts only after the retry has looked ("late-accept": the stand-in takes the
message after the client gave up) is sent twice: the test measures how many recipients got a
second SMS in each case."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from appointments import services
from appointments.models import Patient
from notifications.models import Notification
from notifications.outbox import sweeps
from tests.twilio_standin import TwilioStandIn

from .harness import duplicates, report

TIMEOUT = 0.5  # TWILIO_HTTP_TIMEOUT
SLOW = 1.2  # the stand-in answers 201 this late: after the client gave up

# name: (recipients, script of the first answers; the rest are 201)
GROUPS = {
    "in-time": (3, [("slow", TIMEOUT / 3)]),
    "timeout": (6, [("slow", SLOW)]),
    "429-burst": (6, [429, 429, 429]),
    "5xx-transient": (6, [500, 503, 502]),
    "5xx-forever": (3, [503] * 10),
    "permanent": (3, [("error", 400, 21211)]),
}
MAX_ATTEMPTS = 5


class LateTwilio(TwilioStandIn):
    """The stand-in, plus ("late", seconds): the message is accepted only after that long (the
    plain ("slow", seconds) accepts at once and delays the answer)."""

    def _next_answer(self, to):
        answer = super()._next_answer(to)
        if isinstance(answer, tuple) and answer[0] == "late":
            time.sleep(answer[1])  # the handler records the message as accepted after this
            return 201
        return answer


@pytest.fixture
def late_twilio(settings):
    server = LateTwilio()
    settings.TWILIO_API_BASE_URL = server.base_url
    settings.TWILIO_ACCOUNT_SID = server.account_sid
    settings.TWILIO_AUTH_TOKEN = server.auth_token
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fast_retries(settings):
    settings.TWILIO_HTTP_TIMEOUT = TIMEOUT
    settings.NOTIFICATIONS_MAX_ATTEMPTS = MAX_ATTEMPTS
    settings.NOTIFICATIONS_BACKOFF_BASE = 0.05
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 0
    settings.NOTIFICATIONS_BACKOFF_MAX = 0.2


def test_provider_faults_end_sent_or_dead_with_the_error_kept(db, fast_retries, late_twilio, mailoutbox):
    twilio = late_twilio
    patients = {}
    n = 0
    for group, (count, script) in GROUPS.items():
        for _ in range(count):
            patient = Patient.objects.create(
                name=f"Fault {n}", email=f"fault{n}@example.com", phone=f"+1415850{n:04d}", channels=["sms"]
            )
            twilio.script(patient.phone, *script)
            patients[patient.phone] = (group, patient)
            n += 1
            services.book(
                patient=patient, provider="Dr. Fault", starts_at=timezone.now() + timedelta(days=7), duration_minutes=30
            )
    rows = Notification.objects.filter(kind="booking_confirmation")

    sweeps_run = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not rows.filter(status__in=["pending", "sending"]).exists() and not rows.retrying().exists():
            break
        sweeps.sweep()
        sweeps_run += 1
        time.sleep(0.05)

    time.sleep(SLOW)  # every late acceptance has happened
    accepted_sms = Counter(message["to"] for message in twilio.accepted)  # what patients' phones got
    by_phone = {row.recipient: row for row in rows.filter(channel="sms")}
    outcome = Counter()
    for phone, (group, _) in patients.items():
        row = by_phone[phone]
        outcome[(group, row.status, row.attempts)] += 1
    statuses = Counter(rows.values_list("status", flat=True))
    dead = [r for r in rows if r.is_dead]

    def second_sms(group):
        phones = [p for p, (g, _) in patients.items() if g == group]
        return f"{sum(1 for p in phones if accepted_sms[p] >= 2)}/{len(phones)}"

    fallback_emails = Counter(m.to[0] for m in mailoutbox)
    report(
        "5 provider faults",
        rows=rows.count(),
        sent=statuses["sent"],
        duplicates=sum(n - 1 for n in accepted_sms.values() if n > 1) + duplicates(fallback_emails),
        lost=sum(1 for r in rows if r.status not in ("sent", "failed")) + sum(1 for r in dead if not r.last_error),
        stuck=statuses["pending"]
        + statuses["sending"]
        + sum(1 for r in rows if r.status == "failed" and not r.is_dead),
        five_xx=0,
        second_sms_after_timeout=second_sms("timeout"),
        dead=len(dead),
        fallback_emails=sum(fallback_emails.values()),
        sweeps=sweeps_run,
        posts=len(twilio.requests),
        lookups=len(twilio.lookups),
    )
    for (group, status, attempts), count in sorted(outcome.items()):
        print(f"  {group}: {count} {status} after {attempts} attempt(s)")

    # Nothing left in flight or waiting.
    assert statuses["pending"] == statuses["sending"] == 0
    assert not rows.retrying().exists()
    for phone, (group, patient) in patients.items():
        row = by_phone[phone]
        if group in ("in-time", "timeout", "429-burst", "5xx-transient"):
            assert row.status == "sent", (group, row.status, row.last_error)
            # (more attempts only if a send timed out on a busy machine: the look-first retry
            # keeps that from becoming a second SMS, checked below)
            assert row.attempts >= (1 if group == "in-time" else len(GROUPS[group][1]) + 1)
            assert row.provider_message_id.startswith("SM")
        elif group == "5xx-forever":
            assert row.is_dead and row.attempts == MAX_ATTEMPTS
            assert "503" in row.last_error and row.error_code == "20500"
        else:
            assert row.is_dead and row.attempts == 1
            assert row.error_code == "21211" and "21211" in row.last_error
        if row.is_dead:  # a text message dead for good goes by email instead, once
            fallback = Notification.objects.get(fallback_for=row)
            assert fallback.status == "sent"
            assert fallback_emails[patient.email] == 1
    # Exactly one SMS each (none where Twilio refused every attempt).
    for phone, (group, _) in patients.items():
        assert accepted_sms[phone] == (0 if group in ("5xx-forever", "permanent") else 1), (group, accepted_sms[phone])


def late_acceptances(twilio, settings, scenario, **extra):
    """Three patients' confirmations, each taken by Twilio 2 s after the client gave up, swept
    until sent; then the late acceptances land. Returns each phone's SMS count."""
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    patients = []
    for n in range(3):
        patient = Patient.objects.create(
            name=f"Late {n}", email=f"late{n}@example.com", phone=f"+1415860{n:04d}", channels=["sms"]
        )
        twilio.script(patient.phone, ("late", 2.0))
        services.book(
            patient=patient, provider="Dr. Late", starts_at=timezone.now() + timedelta(days=7), duration_minutes=30
        )
        patients.append(patient)
    rows = Notification.objects.filter(kind="booking_confirmation")
    deadline = time.monotonic() + 20
    while rows.exclude(status="sent").exists() and time.monotonic() < deadline:
        sweeps.sweep()
        time.sleep(0.05)
    time.sleep(2.0)  # the late acceptances have happened
    accepted_sms = Counter(message["to"] for message in twilio.accepted)
    statuses = Counter(rows.values_list("status", flat=True))
    report(
        scenario,
        rows=len(patients),
        sent=statuses["sent"],
        duplicates=duplicates(accepted_sms),
        lost=sum(1 for p in patients if accepted_sms[p.phone] == 0),
        stuck=len(patients) - statuses["sent"],
        five_xx=0,
        second_sms_after_late_accept=f"{sum(1 for p in patients if accepted_sms[p.phone] >= 2)}/{len(patients)}",
        lookups=len(twilio.lookups),
        **extra,
    )
    assert statuses == {"sent": len(patients)}
    return [accepted_sms[p.phone] for p in patients]


def test_message_twilio_accepts_after_the_retry_looked_goes_out_twice(db, fast_retries, late_twilio, settings):
    """The hole the look-first retry leaves: Twilio takes the first request only after the
    client gave up AND after the retry listed the recipient's messages. With no grace before
    the retry (NOTIFICATIONS_UNANSWERED_GRACE=0) it comes at once, so the message goes out
    twice (at most twice)."""
    counts = late_acceptances(late_twilio, settings, "5b late acceptance, no grace")
    assert all(1 <= count <= 2 for count in counts)


def test_retry_of_an_unanswered_send_waits_out_the_grace_and_finds_the_late_message(
    db, fast_retries, late_twilio, settings
):
    """5b narrowed: the retry of a send whose answer was lost comes no sooner than
    NOTIFICATIONS_UNANSWERED_GRACE (here 3 s, past Twilio's 2 s late acceptance), so its look-up
    finds the message and nothing goes twice."""
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 3
    assert late_acceptances(late_twilio, settings, "5b late acceptance, 3 s grace") == [1, 1, 1]


# name: (script of the first sends, script of the first look-ups)
POSSIBLY_SENT = {
    "dropped": (["drop"], []),  # accepted, then the connection closes without an answer
    "lookup-fails": ([("slow", SLOW)], [503]),  # unanswered, then the retry's look-up gets a 503
    "unanswered": ([("slow", SLOW)], []),  # unanswered, the look-up answers
}
TWILIO_CLOCK_BEHIND = 30  # seconds: Twilio's date_created is this much earlier than our clock


def test_possibly_sent_sms_is_looked_up_until_its_outcome_is_known(db, fast_retries, late_twilio):
    """Scenario 5c: three ways a request may have reached Twilio without an answer coming back,
    under a clock at Twilio 30 s behind ours. Each retry must look first, and keep looking
    after a failed look-up, so that every phone gets one SMS."""
    twilio = late_twilio
    twilio.clock_skew = -TWILIO_CLOCK_BEHIND
    patients = {}
    for n, (group, (sends, lookups)) in enumerate((g, s) for g, s in POSSIBLY_SENT.items() for _ in range(3)):
        patient = Patient.objects.create(
            name=f"Maybe {n}", email=f"maybe{n}@example.com", phone=f"+1415880{n:04d}", channels=["sms"]
        )
        twilio.script(patient.phone, *sends)
        twilio.script_lookups(patient.phone, *lookups)
        patients[patient.phone] = group
        services.book(
            patient=patient, provider="Dr. Maybe", starts_at=timezone.now() + timedelta(days=7), duration_minutes=30
        )
    rows = Notification.objects.filter(kind="booking_confirmation")
    deadline = time.monotonic() + 30
    while rows.exclude(status="sent").exclude(pk__in=rows.dead()).exists():
        if time.monotonic() > deadline:
            break
        sweeps.sweep()
        time.sleep(0.05)
    time.sleep(SLOW)

    accepted_sms = Counter(message["to"] for message in twilio.accepted)
    statuses = Counter(rows.values_list("status", flat=True))

    def second_sms(group):
        phones = [p for p, g in patients.items() if g == group]
        return f"{sum(1 for p in phones if accepted_sms[p] >= 2)}/{len(phones)}"

    report(
        "5c possibly sent",
        rows=len(patients),
        sent=statuses["sent"],
        duplicates=duplicates(accepted_sms),
        lost=sum(1 for p in patients if accepted_sms[p] == 0),
        stuck=len(patients) - statuses["sent"] - statuses["failed"],
        five_xx=0,
        **{f"second_sms_{group.replace('-', '_')}": second_sms(group) for group in POSSIBLY_SENT},
        lookups=len(twilio.lookups),
    )
    assert statuses == {"sent": len(patients)}
    assert {phone: accepted_sms[phone] for phone in patients} == {phone: 1 for phone in patients}
    for row in rows:
        assert row.provider_message_id in {m["sid"] for m in twilio.accepted if m["to"] == row.recipient}
