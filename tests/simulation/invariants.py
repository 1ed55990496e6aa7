"""The invariants of docs/RELIABILITY.md ("Invariants"), checked against what reached each
recipient at the stand-ins' edge, with our tables only to say what each row claims. Each failure
names its invariant first, so a report can tell them apart."""

import os
from collections import Counter, defaultdict

from django.db.models import Count

from appointments.models import AppointmentStatus
from notifications.channels import TEXT_CHANNELS
from notifications.messages.languages import message_language
from notifications.messages.rendering import local_date_and_time
from notifications.models import Channel, Notification, NotificationKind, NotificationStatus
from notifications.outbox.undeliverable import is_undeliverable

# SIMULATION_RELAX="at most once,true when sent" counts those invariants' violations instead of
# stopping at the first, to explore past a known defect; the test still fails if any was counted.
RELAXED = {name.strip() for name in os.environ.get("SIMULATION_RELAX", "").split(",") if name.strip()}
VIOLATIONS = Counter()
FIRST_SEEN = {}  # invariant: its first violation's detail


class Violation(AssertionError):
    pass


def check(condition, invariant, detail):
    if condition:
        return
    if invariant in RELAXED:
        VIOLATIONS[invariant] += 1
        FIRST_SEEN.setdefault(invariant, detail)
        return
    raise Violation(f"{invariant}: {detail}")


def after_step(machine):
    """Every invariant that must hold between any two steps."""
    edge = machine.edge
    every = edge.deliveries()
    new = edge.new_deliveries()
    for delivered in new:
        true_when_sent(delivered)
        no_message_after_delivery(delivered, machine.delivered_rows)
    at_most_once(every, machine.unwritten_email_ids | machine.held_email_ids())
    own_identity(every)
    receipts_are_evidence(machine.delivered_rows)
    consent_follows_the_patient(machine)
    machine.check_channels(new)


def true_when_sent(delivered):
    """No message names a time the appointment no longer has, nor goes out (other than its
    cancellation notice) for an appointment cancelled when it was sent. Checked in the step that
    sent it, which changed no appointment: the appointment is as it was at the send."""
    check(delivered.row_id > 0, "own identity", f"a message tied to no row reached {delivered.to}: {delivered.text!r}")
    row = Notification.objects.select_related("appointment").get(pk=delivered.row_id)
    appointment = row.appointment
    if appointment.status == AppointmentStatus.CANCELLED:
        check(
            row.kind == NotificationKind.CANCELLATION,
            "true when sent",
            f"row {row.pk} ({row.kind}) reached {delivered.to} after its appointment was cancelled",
        )
    zone = row.context.get("timezone") or "UTC"
    date, time = local_date_and_time(appointment.starts_at.isoformat(), zone, message_language(row.context))
    check(
        date in delivered.text and time in delivered.text,
        "true when sent",
        f"row {row.pk} ({row.kind} by {row.channel}) told {delivered.to} {delivered.text!r}; "
        f"the appointment was then at {date} {time}",
    )


def no_message_after_delivery(delivered, delivered_rows):
    """A receipt is evidence: a message a receipt showed delivered is never sent again, nor does
    its fallback go."""
    check(
        delivered.row_id not in delivered_rows,
        "receipt is evidence",
        f"row {delivered.row_id} reached {delivered.to} again although a receipt showed its message delivered",
    )
    fallback_for = Notification.objects.filter(pk=delivered.row_id).values_list("fallback_for", flat=True).first()
    check(
        fallback_for not in delivered_rows,
        "receipt is evidence",
        f"fallback row {delivered.row_id} reached {delivered.to} although row {fallback_for}'s message was delivered",
    )


def at_most_once(every, unwritten_email_ids):
    """At most one message per row reaches its recipient. The one window allowed, and counted:
    an email the SMTP server took whose outcome was never written (a worker gone, or stalled
    past its lease), sent again; SMTP has nothing to look up."""
    by_row = defaultdict(list)
    for delivered in every:
        by_row[delivered.row_id].append(delivered)
    for row_id, copies in by_row.items():
        counted = [c for c in copies[:-1] if c.message_id not in unwritten_email_ids] + copies[-1:]
        check(
            len(counted) <= 1,
            "at most once",
            f"row {row_id} reached {copies[0].to} {len(copies)} times: "
            + "; ".join(f"{c.message_id}{' (accepted late)' if c.late else ''}: {c.text!r}" for c in copies),
        )


def own_identity(every):
    """No two rows share a provider id, and a row recorded sent has a message its own attempt
    created (in-app rows are their own message)."""
    shared = (
        Notification.objects.exclude(provider_message_id="")
        .values("provider_message_id")
        .annotate(rows=Count("id"))
        .filter(rows__gt=1)
    )
    for group in shared:
        rows = Notification.objects.filter(provider_message_id=group["provider_message_id"])
        check(
            False,
            "own identity",
            f"rows share the provider id {group['provider_message_id']}: "
            + ", ".join(f"{r.pk} ({r.kind} by {r.channel}, {r.status}, {r.scheduled_for:%d %b %H:%M})" for r in rows),
        )
    made_for = {d.message_id: d.row_id for d in every}
    sent = Notification.objects.filter(status=NotificationStatus.SENT).exclude(channel=Channel.IN_APP)
    for pk, provider_message_id in sent.values_list("pk", "provider_message_id"):
        check(
            made_for.get(provider_message_id) == pk,
            "own identity",
            f"row {pk} is recorded sent with {provider_message_id!r}, "
            + (
                f"a message made for row {made_for[provider_message_id]}"
                if provider_message_id in made_for
                else "which reached nobody"
            ),
        )


def receipts_are_evidence(delivered_rows):
    """A row whose message a receipt showed delivered is never killed."""
    dead = list(Notification.objects.filter(pk__in=delivered_rows).dead().values_list("pk", "last_error"))
    check(not dead, "receipt is evidence", f"rows dead although their message was delivered: {dead}")


def consent_follows_the_patient(machine):
    """The patient's last word stands: after STOP their SMS is off; after START it is on, unless
    Twilio refused a later send to them as unsubscribed (21610)."""
    for patient in machine.patients:
        word, at_request = machine.last_word.get(patient.pk, (None, 0))
        if word is None:
            continue
        patient.refresh_from_db(fields=["opted_out"])
        opted_out = Channel.SMS in patient.opted_out
        if word == "STOP":
            check(opted_out, "consent", f"patient {patient.pk} texted STOP and is still opted in to SMS")
        elif not [n for n in machine.edge.refusals_to(patient.phone, 21610) if n >= at_request]:
            check(not opted_out, "consent", f"patient {patient.pk} texted START and is opted out of SMS again")


def at_least_once(machine):
    """At the end, drained: every row sent, skipped with a reason, cancelled, or dead with its
    error kept and (a text message, for a patient with an email address they did not opt out
    of, nor an email service reported dead, since before the row died) its email fallback planned."""
    for row in Notification.objects.select_related("patient"):
        if row.status in (NotificationStatus.SENT, NotificationStatus.CANCELLED):
            continue
        where = f"row {row.pk} ({row.kind} by {row.channel}, {row.status}, attempts {row.attempts})"
        check(row.status != NotificationStatus.PENDING, "at least once", f"{where} stuck pending")
        check(row.status != NotificationStatus.SENDING, "at least once", f"{where} stuck sending")
        check(bool(row.last_error), "at least once", f"{where} has no reason kept")
        if row.status == NotificationStatus.FAILED:
            check(row.is_dead, "at least once", f"{where} still waiting for a retry at {row.next_attempt_at}")
            patient = row.patient
            changed_at = machine.email_changed_at.get(patient.pk)
            if (
                row.channel in TEXT_CHANNELS
                and patient.email
                and Channel.EMAIL not in patient.opted_out
                and not is_undeliverable(patient.pk, patient.email)
                and (changed_at is None or (row.died_at is not None and row.died_at > changed_at))
            ):
                fallback = Notification.objects.filter(
                    appointment_id=row.appointment_id,
                    kind=row.kind,
                    channel=Channel.EMAIL,
                    scheduled_for=row.scheduled_for,
                )
                check(fallback.exists(), "at least once", f"{where} died with no email fallback planned")
