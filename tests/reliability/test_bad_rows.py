"""Scenario 8, one bad row: a row whose attempt raises outside the channel call (here a patient
whose `opted_out` the admin saved as `0`, not a list) shares a batch with healthy rows. The
sweep runs round after round as beat would, each round followed by an expired lease and a
reclaim. The bad row ends alone (failed, `internal`, its error kept); the healthy rows are sent
once each, whatever the rounds."""

from collections import Counter
from datetime import timedelta

from django.utils import timezone

from appointments.models import Patient
from notifications.models import Notification
from notifications.outbox import delivery

from .harness import duplicates, report

HEALTHY = 3
ROUNDS = 3


def test_one_bad_row_does_not_take_its_batch_down(db, book, make_patient, mailoutbox, settings):
    settings.NOTIFICATIONS_BACKOFF_BASE = 3600  # the bad row's retry stays out of the rounds
    healthy = [make_patient(channels=["email"]) for _ in range(HEALTHY)]
    bad = make_patient(channels=["email"])
    for patient in [*healthy, bad]:
        book(patient)
    Patient.objects.filter(pk=bad.pk).update(opted_out=0)  # saved after planning, as the admin would
    rows = Notification.objects.filter(kind="booking_confirmation")

    sweep_errors = []
    emails_by_round = []
    for _ in range(ROUNDS):
        try:
            delivery.sweep()
        except Exception as exc:  # noqa: BLE001 - counted: a sweep must not fail for one row
            sweep_errors.append(exc.__class__.__name__)
        Notification.objects.filter(status="sending").update(claimed_at=timezone.now() - timedelta(days=1))
        delivery.reclaim_expired_leases()
        emails_by_round.append(sum(1 for m in mailoutbox if m.to[0] != bad.email))

    emails = Counter(m.to[0] for m in mailoutbox)
    bad_row = rows.get(patient=bad)
    statuses = Counter(rows.exclude(pk=bad_row.pk).values_list("status", flat=True))
    report(
        "8 one bad row in a batch",
        rows=HEALTHY + 1,
        sent=statuses["sent"],
        duplicates=duplicates(emails),
        lost=sum(1 for p in healthy if emails[p.email] == 0),
        stuck=statuses["pending"] + statuses["sending"],
        five_xx=0,
        healthy_emails_by_round="/".join(map(str, emails_by_round)),
        sweep_errors=len(sweep_errors),
        bad_row=f"{bad_row.status}:{bad_row.error_code}",
    )
    assert sweep_errors == []
    assert {p.email: emails[p.email] for p in healthy} == {p.email: 1 for p in healthy}
    assert statuses == {"sent": HEALTHY}
    assert bad_row.status == "failed" and bad_row.error_code == "internal"
    assert "TypeError" in bad_row.last_error
    assert emails[bad.email] == 0
