"""A patient's consent per channel: the words they text us (STOP, START) and Twilio refusing a
send because the recipient unsubscribed (21610) both land in Patient.opted_out, which planning
and sending already honour."""

from django.db import transaction

from appointments.models import Patient
from appointments.signals import consent_changed
from notifications.channels import get_channel
from notifications.inbound.models import InboundAction, InboundMessage
from notifications.outbox.planning import plan_fallback
from notifications.outbox.signals import notification_dead


@transaction.atomic
def set_opted_out(patient_ids, channel, opted_out):
    """Add the channel to (or take it out of) these patients' opted_out; returns how many changed.
    The rows are locked, so a racing change of the same list is not lost."""
    changed = 0
    for patient in Patient.objects.select_for_update().filter(pk__in=patient_ids).order_by("pk"):
        if (channel in patient.opted_out) == opted_out:
            continue
        if opted_out:
            patient.opted_out = [*patient.opted_out, channel]
        else:
            patient.opted_out = [c for c in patient.opted_out if c != channel]
        patient.save(update_fields=["opted_out"])
        if opted_out:
            # A send a worker holds but has not started goes no more, whatever it read before.
            patient.notifications.filter(channel=channel).skip_unstarted(f"patient opted out of {channel}")
        consent_changed.send(Patient, patient_id=patient.pk, channel=channel, opted_out=opted_out)
        changed += 1
    return changed


def after_dead(notification):
    """A row that failed for good: a refusal that means the recipient unsubscribed opts the
    patient out of that channel, so we stop trying; then the message falls back to email. Every
    outcome's death passes here, in the transaction that wrote it (an expired lease's is
    announced by sweeps.reclaim_expired_leases)."""
    notification_dead.send(type(notification), notification=notification)
    if get_channel(notification.channel).means_unsubscribed(notification.error_code):
        _opt_out_unless_opted_in_since(notification)
    return plan_fallback(notification)


@transaction.atomic
def _opt_out_unless_opted_in_since(notification):
    """The refusal tells of a STOP older than the send; a START the patient sent after the send
    was claimed is their latest word and stands. Read under the patient's lock, which the START
    takes after recording its message: one not seen here is applied after this."""
    list(Patient.objects.select_for_update().filter(pk=notification.patient_id))
    opted_in_since = InboundMessage.objects.filter(
        channel=notification.channel,
        from_number=notification.recipient,
        action=InboundAction.OPTED_IN,
        received_at__gte=notification.claimed_at,
    )
    if not opted_in_since.exists():
        set_opted_out([notification.patient_id], notification.channel, True)
