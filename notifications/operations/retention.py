"""Old rows go, so the seed's "tracking" does not grow the table forever."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.outbox.models import DEAD, Notification, NotificationStatus

FINISHED = Q(status__in=[NotificationStatus.SENT, NotificationStatus.CANCELLED, NotificationStatus.SKIPPED]) | DEAD


def purgeable(older_than_days, now=None):
    """Finished rows (sent, cancelled, skipped, dead) last touched before the cut-off.

    Deleting a row deletes its fallback (CASCADE), so a row whose fallback is not purgeable
    itself (still pending, retrying, or young, e.g. retried by staff) stays until it is."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    old_and_finished = FINISHED & Q(updated_at__lt=cutoff)
    fallbacks_to_keep = Notification.objects.filter(fallback_for__isnull=False).exclude(old_and_finished)
    return Notification.objects.filter(old_and_finished).exclude(fallback__in=fallbacks_to_keep)


def purge_content(older_than_days, batch_size=1000, now=None):
    """Blank the rendered copy of messages sent before the cut-off, in batches; their rows stay
    (status, channel, kind and times are the statistics). Returns how many were blanked."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    with_copy = ~Q(rendered_subject="", rendered_text="", rendered_html="")
    old = Notification.objects.filter(with_copy, status=NotificationStatus.SENT, sent_at__lt=cutoff)
    blanked = 0
    while ids := list(old.order_by("id").values_list("id", flat=True)[:batch_size]):
        # Not a status change: only the copy goes, so no transition is involved.
        blanked += Notification.objects.filter(pk__in=ids).update(
            rendered_subject="", rendered_text="", rendered_html=""
        )
    return blanked


def purge(older_than_days, batch_size=1000):
    """Delete the purgeable rows; returns how many went."""
    return sum(purge_in_batches(older_than_days, batch_size))


def purge_in_batches(older_than_days, batch_size=1000):
    """Delete in batches, each its own short statement, so a large purge never holds long locks;
    yields the number of rows each batch deleted."""
    while True:
        ids = list(purgeable(older_than_days).order_by("id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return
        yield delete_still_purgeable(ids, older_than_days)


@transaction.atomic
def delete_still_purgeable(ids, older_than_days):
    """Delete those of the rows that are still purgeable. Between reading a batch's ids and
    deleting them a row can come back into play (staff retry a dead row, or its fallback); so
    the rows, and the fallbacks their delete takes with them (CASCADE), are locked first and
    checked again in the delete's own transaction: a row retried before stays, with its row,
    and a retry from now waits for the delete and finds nothing."""
    list(
        Notification.objects.select_for_update()
        .filter(Q(pk__in=ids) | Q(fallback_for__in=ids))
        .order_by("pk")
        .values_list("id", flat=True)
    )
    still = list(purgeable(older_than_days).filter(pk__in=ids).values_list("id", flat=True))
    # A fallback row points at the row it stands in for; it goes with it.
    return Notification.objects.filter(pk__in=still).delete()[1].get("notifications.Notification", 0)
