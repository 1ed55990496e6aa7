"""How long rendering one row takes, in this process: `.venv/bin/python scripts/render_timing.py`.

Prints microseconds per render() (median of several rounds) for an SMS confirmation, an email
confirmation (with its calendar invitation) and an email reminder (without), in English and Spanish, from the files alone and with the clinic's own templates stored, and what a
worker's refresh() of the stored templates costs. Uses a throwaway SQLite database."""

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROUNDS, CALLS = 7, 500


def rows(language):
    from appointments.models import Appointment, Patient
    from notifications.messages.snapshot import snapshot
    from notifications.models import Notification

    patient = Patient(pk=1, name="Grace Hopper", email="g@example.com", timezone="Europe/Madrid", language=language)
    appointment = Appointment(
        pk=1, patient=patient, provider="Dr. Ada Lovelace", starts_at=datetime(2031, 12, 9, 8, 30, tzinfo=UTC)
    )
    context = snapshot(appointment)
    for channel, kind in (("sms", "booking_confirmation"), ("email", "booking_confirmation"), ("email", "reminder")):
        yield Notification(
            pk=1,
            appointment=appointment,
            patient=patient,
            channel=channel,
            kind=kind,
            recipient="g@example.com",
            context=context,
        )


def per_call(function):
    """Median microseconds per call over ROUNDS rounds of CALLS calls (after a warm-up)."""
    function()
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            function()
        rounds.append((time.perf_counter() - started) / CALLS * 1e6)
    return statistics.median(rounds)


def main():
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(tempfile.mkdtemp()) / 'db.sqlite3'}"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from notifications.messages import catalog
    from notifications.messages.invitations import invitation
    from notifications.messages.rendering import render
    from notifications.messages.store import save_template

    call_command("migrate", verbosity=0)
    print("| case | µs per render |\n| --- | --- |")
    for stored in (False, True):
        if stored:
            for language in ("en", "es"):
                save_template(
                    None,
                    {
                        "channel": "sms",
                        "kind": "booking_confirmation",
                        "language": language,
                        "text": "{{ clinic_name }}: {{ provider }}, {{ date }} {{ time }}.",
                    },
                    None,
                )
                save_template(
                    None,
                    {
                        "channel": "email",
                        "kind": "booking_confirmation",
                        "language": language,
                        "subject": "{{ provider }}, {{ date }}",
                    },
                    None,
                )
        for language in ("en", "es"):
            for row in rows(language):
                source = "stored templates" if stored else "files only"
                label = f"{row.channel} {row.kind} {language}, {source}"
                print(f"| {label} | {per_call(lambda row=row: render(row)):.0f} |")
    confirmation = next(rows("en"))
    print(f"| the calendar invitation alone | {per_call(lambda: invitation(confirmation)):.0f} |")
    forced = per_call(lambda: catalog.refresh(force=True))
    print(f"| refresh(force=True): one version query, templates unchanged | {forced:.0f} |")
    print(f"| refresh(): within NOTIFICATIONS_TEMPLATE_REFRESH_SECONDS | {per_call(catalog.refresh):.1f} |")


if __name__ == "__main__":
    main()
