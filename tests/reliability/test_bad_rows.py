"""Scenario 8, one bad row: a row whose attempt raises outside the channel call (here a patient
whose `opted_out` the admin saved as `0`, not a list) shares a batch with healthy rows. The
sweep runs round after round as beat would, each round followed by an expired lease and a
reclaim. The bad row ends alone (failed, `internal`, its error kept); the healthy rows are sent
once each, whatever the rounds. 8b-8d: a value the database will not store (a NUL a staff
template renders, a NUL in Twilio's answer, a refusal no sanitizing foresees) in the outcome
write the batch shares."""

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from appointments.models import Patient
from notifications.messages import catalog
from notifications.models import MessageTemplate, Notification
from notifications.outbox import delivery, sweeps

from .harness import duplicates, report

HEALTHY = 3
ROUNDS = 3
# Compiles, names only a variable a message has, and renders a NUL character.
NUL_TEMPLATE = 'Hola {{ patient_name }}{{ 0|stringformat:"c" }}'


def test_one_bad_row_does_not_take_its_batch_down(db, book, make_patient, mailoutbox, settings):
    settings.NOTIFICATIONS_BACKOFF_BASE = 3600  # the bad row's retry stays out of the rounds
    healthy = [make_patient(channels=["email"]) for _ in range(HEALTHY)]
    bad = make_patient(channels=["email"])
    for patient in [*healthy, bad]:
        book(patient)
    Patient.objects.filter(pk=bad.pk).update(opted_out=0)  # saved after planning, as the admin would
    rows = Notification.objects.filter(kind="booking_confirmation")

    sweep_errors, emails_by_round = sweep_rounds(lambda: sum(1 for m in mailoutbox if m.to[0] != bad.email))

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


def test_a_template_that_renders_a_nul_costs_its_own_row_alone(
    db, book, make_patient, mailoutbox, settings, monkeypatch
):
    """Scenario 8b: a Spanish confirmation that compiles and names only known variables but
    renders a NUL (`stringformat:"c"` of 0), which PostgreSQL refuses in text. Saving refuses it
    now (issue 28: every part is rendered at save); one stored before that check, or written
    around it, must still cost its own row alone. The healthy rows share the outcome write with
    it, round after round."""
    settings.NOTIFICATIONS_BACKOFF_BASE = 3600  # a retry of the bad row stays out of the rounds
    # The batch's four outcomes in one write, as on a busy worker, however fast each send is.
    monkeypatch.setattr(delivery, "OUTCOME_WRITE_WINDOW", 10.0)
    MessageTemplate.objects.create(channel="email", kind="booking_confirmation", language="es", text=NUL_TEMPLATE)
    catalog.forget()
    healthy = [make_patient(channels=["email"]) for _ in range(HEALTHY)]
    bad = make_patient(channels=["email"], language="es")
    for patient in [*healthy, bad]:
        book(patient)
    rows = Notification.objects.filter(kind="booking_confirmation", channel="email")  # a dead email falls back to SMS

    sweep_errors, emails_by_round = sweep_rounds(lambda: sum(1 for m in mailoutbox if m.to[0] != bad.email))

    emails = Counter(m.to[0] for m in mailoutbox)
    bad_row = rows.get(patient=bad)
    statuses = Counter(rows.exclude(pk=bad_row.pk).values_list("status", flat=True))
    report(
        "8b a template renders a NUL",
        rows=HEALTHY + 1,
        sent=statuses["sent"],
        duplicates=duplicates(emails),
        lost=sum(1 for p in healthy if emails[p.email] == 0),
        stuck=statuses["pending"] + statuses["sending"],
        five_xx=0,
        healthy_emails_by_round="/".join(map(str, emails_by_round)),
        sweep_errors=len(sweep_errors),
        bad_row=f"{bad_row.status}:{bad_row.error_code}:{'dead' if bad_row.is_dead else 'retrying'}",
    )
    assert sweep_errors == []
    assert {p.email: emails[p.email] for p in healthy} == {p.email: 1 for p in healthy}
    assert statuses == {"sent": HEALTHY}
    assert (bad_row.status, bad_row.error_code, bad_row.is_dead) == ("failed", "internal", True)
    assert "U+0000" in bad_row.last_error and "\x00" not in bad_row.last_error
    assert emails[bad.email] == 0


def sweep_rounds(messages_to_healthy):
    """ROUNDS sweeps as beat runs them, each followed by an expired lease and a reclaim: the
    sweeps' errors, and messages_to_healthy() after each round."""
    errors, by_round = [], []
    for _ in range(ROUNDS):
        try:
            sweeps.sweep()
        except Exception as exc:  # noqa: BLE001 - counted: a sweep must not fail for one row
            errors.append(exc.__class__.__name__)
        Notification.objects.filter(status="sending").update(claimed_at=timezone.now() - timedelta(days=1))
        sweeps.reclaim_expired_leases()
        by_round.append(messages_to_healthy())
    return errors, by_round


def test_a_provider_answer_holding_a_nul_costs_no_other_row(db, book, make_patient, twilio, settings, monkeypatch):
    """Scenario 8c: Twilio refuses one number with an error message holding a NUL; the other
    SMS of the batch share its outcome write."""
    monkeypatch.setattr(delivery, "OUTCOME_WRITE_WINDOW", 10.0)  # the batch's outcomes in one write
    healthy = [make_patient(channels=["sms"], phone=f"+1415555020{n}") for n in range(HEALTHY)]
    bad = make_patient(channels=["sms"], phone="+14155550299")
    twilio.script(bad.phone, ("error", 400, 21211, "The 'To' number +1415555\x00 is not a valid phone number."))
    for patient in [*healthy, bad]:
        book(patient)
    rows = Notification.objects.filter(kind="booking_confirmation", channel="sms")

    def sms_to_healthy():
        return sum(len(twilio.sent_to(p.phone)) for p in healthy)

    sweep_errors, by_round = sweep_rounds(sms_to_healthy)

    sms = Counter({p.phone: len(twilio.sent_to(p.phone)) for p in healthy})
    bad_row = rows.get(patient=bad)
    statuses = Counter(rows.exclude(pk=bad_row.pk).values_list("status", flat=True))
    report(
        "8c a provider answer holds a NUL",
        rows=HEALTHY + 1,
        sent=statuses["sent"],
        duplicates=duplicates(sms),
        lost=sum(1 for p in healthy if sms[p.phone] == 0),
        stuck=statuses["pending"] + statuses["sending"],
        five_xx=0,
        healthy_sms_by_round="/".join(map(str, by_round)),
        sweep_errors=len(sweep_errors),
        bad_row=f"{bad_row.status}:{bad_row.error_code}:{'dead' if bad_row.is_dead else 'retrying'}",
    )
    assert sweep_errors == []
    assert sms == {p.phone: 1 for p in healthy}
    assert statuses == {"sent": HEALTHY}
    assert (bad_row.status, bad_row.error_code, bad_row.is_dead) == ("failed", "21211", True)
    assert "The 'To' number +1415555 is not a valid phone number." in bad_row.last_error
    assert bad_row.attempt_log.get().error == bad_row.last_error


@pytest.fixture
def refuse_sent_outcome_for(db):
    """A trigger that makes the database refuse to record a send to this address (not a blip):
    a stand-in for any value a database will not store that no sanitizing foresaw."""
    table = Notification._meta.db_table

    def refuse(recipient):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(
                    "CREATE FUNCTION refuse_outcome() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                )
                cursor.execute(
                    f"CREATE TRIGGER refuse_outcome BEFORE UPDATE ON {table} FOR EACH ROW "
                    f"WHEN (NEW.status = 'sent' AND NEW.recipient = %s) EXECUTE FUNCTION refuse_outcome()",
                    [recipient],
                )
            else:
                # SQLite binds no parameter in a trigger's body: the address is a test's own constant.
                cursor.execute(
                    f"CREATE TRIGGER refuse_outcome BEFORE UPDATE ON {table} "
                    f"WHEN NEW.status = 'sent' AND NEW.recipient = '{recipient}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )

    yield refuse  # the test's transaction, rolled back, takes the trigger away


def test_an_outcome_the_database_refuses_costs_its_own_row_alone(
    db, book, make_patient, mailoutbox, settings, monkeypatch, refuse_sent_outcome_for
):
    """Scenario 8d: the database refuses one row's outcome (not a blip); the batch's other
    outcomes were in the same write."""
    monkeypatch.setattr(delivery, "OUTCOME_WRITE_WINDOW", 10.0)  # the batch's outcomes in one write
    healthy = [make_patient(channels=["email"]) for _ in range(HEALTHY)]
    bad = make_patient(channels=["email"], email="refused@example.com")
    refuse_sent_outcome_for(bad.email)
    for patient in [*healthy, bad]:
        book(patient)
    rows = Notification.objects.filter(kind="booking_confirmation", channel="email")  # a dead email falls back to SMS

    sweep_errors, by_round = sweep_rounds(lambda: sum(1 for m in mailoutbox if m.to[0] != bad.email))

    emails = Counter(m.to[0] for m in mailoutbox)
    bad_row = rows.get(patient=bad)
    statuses = Counter(rows.exclude(pk=bad_row.pk).values_list("status", flat=True))
    report(
        "8d the database refuses one outcome",
        rows=HEALTHY + 1,
        sent=statuses["sent"],
        duplicates=duplicates(emails),
        lost=sum(1 for p in healthy if emails[p.email] == 0),
        stuck=statuses["pending"] + statuses["sending"],
        five_xx=0,
        healthy_emails_by_round="/".join(map(str, by_round)),
        sweep_errors=len(sweep_errors),
        bad_row=f"{bad_row.status}:{bad_row.error_code}:{'dead' if bad_row.is_dead else 'retrying'}",
    )
    assert sweep_errors == []
    assert {p.email: emails[p.email] for p in healthy} == {p.email: 1 for p in healthy}
    assert statuses == {"sent": HEALTHY}
    assert (bad_row.status, bad_row.error_code, bad_row.is_dead, bad_row.possibly_sent) == (
        "failed",
        "internal",
        True,
        True,
    )
    assert "its outcome (sent) was not stored" in bad_row.last_error and "refused by the test" in bad_row.last_error
    assert emails[bad.email] == 1  # sent once, and never again: its death is recorded
