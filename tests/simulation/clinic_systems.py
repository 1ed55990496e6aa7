"""The clinic's own systems, as the simulation's last edge: one webhook endpoint registered for
every event, on the loopback receiver (tests/webhook_receiver.py), which verifies each request
with the `standardwebhooks` library and answers from a script: 200, a 5xx, 410, a hang past the
client's short timeout (WEBHOOKS_HTTP_TIMEOUT), or the connection dropped once it took the
event. Every request is recorded before it is answered, so a step that posts has seen it
arrive: the run stays one thread's, decided by its seed.

The deliveries are posted by the real integrations code: its sweep and lease reclaim, staff's
re-drive, and a webhooks worker taken apart as integrations.delivery.deliver runs a row (the
claim; the POST; the outcome's write), so that it can die between any two.

What happened is read from the domain after every step (an appointment confirmed or
cancelled, a patient's consent changed, a row dead, a row's delivery status moved), each the
event it must produce, with its time; the invariants hold the requests that reached the
endpoint to it."""

from collections import Counter, deque
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from appointments.models import Appointment, AppointmentStatus, Patient
from integrations import delivery as hooks
from integrations.models import EventType, WebhookDelivery, WebhookEndpoint
from integrations.redrive import redrive
from notifications.models import Notification
from notifications.outbox.states import DEAD
from tests.simulation import invariants
from tests.simulation.timing import step
from tests.webhook_receiver import DROP, HANG

PATH = "/clinic/hooks"
ENDPOINT_FAULTS = [500, 503, 410, HANG, DROP]


def _stamp(moment):
    return moment.isoformat().replace("+00:00", "Z")


def _key(event_type, timestamp, data):
    """An event as its receiver tells it from others (who acted, `by`, aside)."""
    return (str(event_type), timestamp, tuple(sorted((k, v) for k, v in data.items() if k != "by")))


_ROW = ("appointment_id", "patient_id", "channel", "kind")


def facts():
    """What the domain says now: the appointments, the patients' consent, the dead rows (with
    when they died), the rows' delivery statuses (plain values: this runs after every step)."""
    rows = Notification.objects.values_list("pk", *_ROW)
    return {
        "appointments": {
            pk: (confirmed_at is not None, status, starts_at.isoformat(), patient_id)
            for pk, confirmed_at, status, starts_at, patient_id in Appointment.objects.values_list(
                "pk", "confirmed_at", "status", "starts_at", "patient_id"
            )
        },
        "consent": {pk: set(opted_out) for pk, opted_out in Patient.objects.values_list("pk", "opted_out")},
        "dead": {
            row[0]: row[1:] for row in rows.filter(DEAD).values_list("pk", "died_at", "error_code", "attempts", *_ROW)
        },
        "delivery": {
            row[0]: row[1:]
            for row in rows.exclude(delivery_status="").values_list(
                "pk", "delivery_status", "delivery_error_code", *_ROW
            )
        },
    }


def _row(pk, appointment_id, patient_id, channel, kind):
    return {
        "notification_id": pk,
        "appointment_id": appointment_id,
        "patient_id": patient_id,
        "channel": channel,
        "kind": kind,
    }


def happenings(before, after, now):
    """The events the change from `before` to `after` (one step's) must produce."""
    found = []
    for pk, (confirmed, status, starts_at, patient_id) in after["appointments"].items():
        was = before["appointments"].get(pk, (False, AppointmentStatus.SCHEDULED))
        data = {"appointment_id": pk, "patient_id": patient_id, "starts_at": starts_at, "status": status}
        if confirmed and not was[0]:
            found.append(_key(EventType.APPOINTMENT_CONFIRMED, _stamp(now), data))
        if status == AppointmentStatus.CANCELLED and was[1] != status:
            found.append(_key(EventType.APPOINTMENT_CANCELLED, _stamp(now), data))
    for pk, opted_out in after["consent"].items():
        was = before["consent"].get(pk, set())
        for channel, event_type in [*((c, EventType.PATIENT_OPTED_OUT) for c in opted_out - was)] + [
            *((c, EventType.PATIENT_OPTED_IN) for c in was - opted_out)
        ]:
            found.append(_key(event_type, _stamp(now), {"patient_id": pk, "channel": channel}))
    for pk, (died_at, error_code, attempts, *row) in after["dead"].items():
        if before["dead"].get(pk, (None,))[0] != died_at:
            data = _row(pk, *row) | {"error_code": error_code, "attempts": attempts}
            found.append(_key(EventType.NOTIFICATION_DEAD, _stamp(died_at), data))
    for pk, (status, error_code, *row) in after["delivery"].items():
        if before["delivery"].get(pk, (None, None))[:2] != (status, error_code):
            data = _row(pk, *row) | {"delivery_status": status, "error_code": error_code}
            found.append(_key(EventType.NOTIFICATION_DELIVERY, _stamp(now), data))
    return found


class ClinicSystems:
    """The endpoint, its receiver, the webhooks worker, and what the run has seen."""

    def __init__(self, receiver):
        self.receiver = receiver
        receiver.received.clear()
        receiver.accepted_ids.clear()
        receiver.scripts.clear()
        self.endpoint = WebhookEndpoint.objects.create(url=receiver.url(PATH), events=list(EventType.values))
        receiver.expect(PATH, self.endpoint.secret)
        self.claimed = deque()  # the webhooks worker's claimed rows, not yet posted
        self.outcomes = []  # (row, HTTP status or None, error) posted, not yet written
        self.checked = 0  # requests already checked
        self.recorded = set()  # webhook ids recorded sent, as of the last check
        self.happened = Counter()  # event key: how many times it happened
        self.facts = facts()

    def post(self, row):
        answer = hooks.post(row)
        self.receiver.release.set()  # a hung answer's thread ends (the client has given up)
        self.receiver.release.clear()
        return answer

    def requests(self):
        """(key, webhook id, request) of every request that reached the endpoint."""
        for request in list(self.receiver.received):
            event = request.event
            yield _key(event["type"], event["timestamp"], event["data"]), request.webhook_id, request


class ClinicSystemsRules:
    """The endpoint's faults and the integrations machinery, for a Simulation (self.hooks)."""

    @rule(answer=st.sampled_from(ENDPOINT_FAULTS))
    @step
    def endpoint_fault(self, answer):
        """The endpoint's answer to the next request it takes."""
        self.hooks.receiver.scripts[PATH].append(answer)

    @rule()
    @step
    def hooks_sweep(self):
        hooks.sweep()

    @rule()
    @step
    def hooks_reclaim(self):
        hooks.reclaim_expired_leases()

    @rule(limit=st.integers(1, 3))
    @step
    def hooks_worker_claims(self, limit):
        now = timezone.now()
        due = list(WebhookDelivery.objects.due(now).order_by("id").values_list("id", flat=True)[:limit])
        self.hooks.claimed.extend(WebhookDelivery.objects.filter(pk__in=due).claim(now))

    @precondition(lambda self: self.hooks.claimed)
    @rule()
    @step
    def hooks_worker_posts(self):
        """The worker posts its next row, as deliver does, and holds the outcome."""
        row = self.hooks.claimed.popleft()
        if timezone.now() > row.claimed_at + timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS / 2):
            row.back_to_queue()
            return
        self.hooks.outcomes.append((row, *self.hooks.post(row)))

    @precondition(lambda self: self.hooks.outcomes)
    @rule()
    @step
    def hooks_worker_writes(self):
        for row, status, error in self.hooks.outcomes:
            row.record_outcome(status, error)
        self.hooks.outcomes.clear()

    @precondition(lambda self: self.hooks.claimed or self.hooks.outcomes)
    @rule()
    @step
    def hooks_worker_dies(self):
        """SIGKILL: its claimed rows abandoned, the outcomes of its POSTs never written."""
        self.hooks.claimed.clear()
        self.hooks.outcomes.clear()

    @precondition(lambda self: WebhookDelivery.objects.dead().exists())
    @rule(i=st.integers(0, 7))
    @step
    def staff_redrives(self, i):
        dead = list(WebhookDelivery.objects.dead().order_by("pk").values_list("pk", flat=True))
        redrive([dead[i % len(dead)]])

    def drain_hooks(self, rounds=40):
        """The worker gone and the endpoint well again; the clock past every lease and backoff,
        reclaiming and sweeping, and staff re-driving what died meanwhile, until all is sent."""
        self.hooks_worker_dies()
        self.hooks.receiver.scripts[PATH].clear()
        lease = timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS + 1)
        for _ in range(rounds):
            hooks.reclaim_expired_leases()
            hooks.sweep()
            redrive(list(WebhookDelivery.objects.dead().values_list("pk", flat=True)))
            hooks.sweep()
            invariants.after_step(self)
            waiting = WebhookDelivery.objects.exclude(status="sent")
            times = [
                *waiting.filter(status="pending").values_list("created_at", flat=True),
                *waiting.retrying().values_list("next_attempt_at", flat=True),
                *(t + lease for t in waiting.filter(status="sending").values_list("claimed_at", flat=True)),
            ]
            if not times:
                return
            self.clock.now = max(self.clock.now + timedelta(seconds=1), min(times))

    def check_hooks(self):
        """After every step: what reached the endpoint is what happened, signed, each event
        under one webhook-id, and nothing recorded sent is posted again."""
        now_facts = facts()
        self.hooks.happened.update(happenings(self.hooks.facts, now_facts, self.clock.now))
        self.hooks.facts = now_facts
        every = list(self.hooks.requests())
        rows = {row.webhook_id: row for row in WebhookDelivery.objects.filter(endpoint=self.hooks.endpoint)}
        for key, webhook_id, request in every[self.hooks.checked :]:
            invariants.check(request.verified, "signed", f"{webhook_id} failed verification: {request.error}")
            row = rows.get(webhook_id)
            invariants.check(
                row is not None and row.body.encode() == request.body,
                "one webhook-id per event",
                f"{webhook_id} carried {request.body!r}; its row has {row.body if row else None!r}",
            )
            invariants.check(
                webhook_id not in self.hooks.recorded,
                "recorded sent is not re-sent",
                f"{webhook_id} ({key[0]}) posted again after its delivery was recorded sent",
            )
        self.hooks.checked = len(every)
        self.hooks.recorded = {webhook_id for webhook_id, row in rows.items() if row.status == "sent"}
        ids = {}
        for key, webhook_id, _ in every:
            ids.setdefault(key, set()).add(webhook_id)
        for key, seen in ids.items():
            invariants.check(
                len(seen) <= self.hooks.happened[key],
                "no event for what did not happen",
                f"{len(seen)} event(s) {key} reached the endpoint; it happened {self.hooks.happened[key]} time(s)",
            )


def every_event_reached(hooks_state):
    """At the end, drained: every event that happened reached the endpoint and was taken (2xx)."""
    taken = {}
    for key, webhook_id, request in hooks_state.requests():
        if isinstance(request.answer, int) and 200 <= request.answer < 300:
            taken.setdefault(key, set()).add(webhook_id)
    for key, count in hooks_state.happened.items():
        invariants.check(
            len(taken.get(key, ())) >= count,
            "events at least once",
            f"{key} happened {count} time(s); the endpoint took {len(taken.get(key, ()))}",
        )
