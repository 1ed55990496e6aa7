"""The record, before their requests go out, that a batch's sends start; and the rule that keeps
a look-up's answer a row's own: one send in doubt at a time for each text recipient.

A text message whose answer was lost is looked for at Twilio by its text, from its own send's
start. Two rows with the same text to the same number (the 1-day and 2-hour reminders) could
both be in doubt at once, and then each look-up could find the other's message. So a text row's
send starts only while no other row to that number is in doubt: its send started under its
claim and has no outcome yet, or it may have been sent and waits to look (possibly_sent). A row
held back goes back to the queue, uncounted, and is tried again shortly.

Reads the model classes from Django's registry: the models import this module."""

from datetime import timedelta

from django.apps import apps
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from notifications.channels import TEXT_CHANNELS
from notifications.outbox.states import IN_DOUBT, NotificationStatus

# How soon a row held back by another send in doubt to its number is due again: most doubts end
# with their send's answer, in seconds; a lost answer's ends at its row's retry.
HELD_BACK_FOR = timedelta(seconds=5)


def _rows():
    return apps.get_model("notifications", "Notification")


def record_send_starts(notifications, now=None):
    """Record that the sends of these claimed rows start (one UPDATE); returns the rows to send:
    those their claims still hold whose recipient has no other send in doubt. The others their
    claims hold go back to the queue. A row possibly sent already keeps the start of its
    earliest attempt that may be out, so that its look-up reaches back to it."""
    if not notifications:
        return []
    now = now or timezone.now()
    first, held_back = _one_per_text_recipient(notifications)
    rows = _rows()
    in_doubt = _in_doubt_elsewhere([n for n in first if n.channel in TEXT_CHANNELS and n.recipient])
    held_back += [n for n in first if n.pk in in_doubt]
    first = [n for n in first if n.pk not in in_doubt]
    if held_back:
        rows.objects.filter(pk__in=[n.pk for n in held_back]).filter(
            status=NotificationStatus.SENDING, claim_token__in={n.claim_token for n in held_back}
        ).put_back(not_before=now + HELD_BACK_FOR)
    if not first:
        return []
    # Conditional on the claims' tokens, like every outcome: a row reclaimed meanwhile is not ours.
    held = rows.objects.filter(
        pk__in=[n.pk for n in first],
        status=NotificationStatus.SENDING,
        claim_token__in={n.claim_token for n in first},
    )
    kept = Q(possibly_sent=True, send_started_at__isnull=False)
    # Never before the claim, whatever this host's clock did since (an NTP step back): a start
    # earlier than its claim would read as not started, and a move would withdraw a send under way.
    started_at = Greatest(Value(now), F("claimed_at"))
    updated = held.update(send_started_at=Case(When(kept, then=F("send_started_at")), default=started_at))
    if updated < len(first):
        still = set(held.values_list("pk", flat=True))
        first = [n for n in first if n.pk in still]
    for n in first:
        if not (n.possibly_sent and n.send_started_at):
            n.send_started_at = max(now, n.claimed_at)
    return first


def _in_doubt_elsewhere(text_rows):
    """The ids of these text rows whose recipient has another row's send in doubt. (Two workers
    starting sends to one number in the same instant both pass: each reads before the other's
    start is committed. Two rows for one number due together are mostly one batch's, which
    _one_per_text_recipient keeps apart.)"""
    if not text_rows:
        return set()
    rows = _rows()
    others_in_doubt = rows.objects.filter(
        IN_DOUBT, channel=OuterRef("channel"), recipient=OuterRef("recipient")
    ).exclude(pk=OuterRef("pk"))
    # A row itself in doubt, waiting to look, waits only for a send under way or for an older row
    # in doubt that waits too: two such rows must not hold each other back forever.
    under_way = Q(status=NotificationStatus.SENDING, send_started_at__gte=F("claimed_at"))
    before_it = others_in_doubt.exclude(~under_way & Q(possibly_sent=True, pk__gt=OuterRef("pk")))
    waits = (Q(possibly_sent=False) & Exists(others_in_doubt)) | (Q(possibly_sent=True) & Exists(before_it))
    return set(rows.objects.filter(pk__in=[n.pk for n in text_rows]).filter(waits).values_list("pk", flat=True))


def _one_per_text_recipient(notifications):
    """The rows whose sends may start together, and those held back: one text row per
    recipient (the first), as the others would be in doubt beside it."""
    first, held_back, seen = [], [], set()
    # A row itself in doubt goes first: it is the one its number waits on (in order otherwise).
    for n in sorted(notifications, key=lambda n: not n.possibly_sent):
        key = (n.channel, n.recipient)
        if n.channel in TEXT_CHANNELS and n.recipient and key in seen:
            held_back.append(n)
        else:
            seen.add(key)
            first.append(n)
    return first, held_back
