"""python -m bench.mime: CPU per email of building one of the email channel's messages and
writing its bytes for SMTP, the way Django's SMTP backend does it (two sanitize_address() and
message().as_bytes()) against notifications/channels/mime.py, in interleaved rounds, in-process.
No database, broker or server: `--rounds`, `--emails` per round."""

import argparse
import os
import statistics
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.core.mail.message import sanitize_address  # noqa: E402 - only once Django is set up

from notifications.channels import Message, mime  # noqa: E402
from notifications.channels.email import email_message  # noqa: E402

CALENDAR = (
    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nPRODID:-//Appointment notifications//EN\r\nVERSION:2.0\r\n"
    + "BEGIN:VTIMEZONE\r\nTZID:Europe/Madrid\r\nBEGIN:STANDARD\r\nDTSTART:20251026T030000\r\nTZNAME:CET\r\n"
    "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    * 3
    + "BEGIN:VEVENT\r\nSUMMARY:Cita con Dra. Muñoz\r\nDTSTART;TZID=Europe/Madrid:20261203T100000\r\n"
    "UID:appointment-1@clinic.example\r\nLOCATION:Clínica Calle Mayor\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
MESSAGES = {
    "English reminder (text + HTML)": Message(
        subject="Reminder: your appointment with Dr. Rivera on Thursday 3 December 2026",
        text="Hello Patient 1,\n\nThis is a reminder of your appointment with Dr. Rivera on Thursday 3 December 2026"
        " at 10:00 UTC at Main Street Clinic.\n\n" * 3,
        html="<html><body>"
        + "<p>Hello Patient 1, this is a reminder of your appointment with Dr. Rivera</p>\n" * 10
        + "</body></html>",
    ),
    "Spanish confirmation (text + HTML + calendar)": Message(
        subject="Confirmación: su cita con la Dra. Muñoz el jueves 3 de diciembre de 2026",
        text="Hola José,\n\nSu cita con la Dra. Muñoz está confirmada para el jueves 3 de diciembre de 2026 a las"
        " 10:00 en la Clínica Calle Mayor.\n\n" * 3,
        html="<html><body>" + "<p>Hola José, su cita con la Dra. Muñoz está confirmada</p>\n" * 10 + "</body></html>",
        calendar=CALENDAR,
        calendar_method="REQUEST",
    ),
}


def djangos(message):
    email = email_message("patient1@example.com", message, "<20261201.1@clinic.example>")
    sender = sanitize_address(email.from_email, "utf-8")
    recipients = [sanitize_address(to, "utf-8") for to in email.recipients()]
    return sender, recipients, email.message().as_bytes(linesep="\r\n")


def ours(message):
    return mime.envelope_and_bytes(email_message("patient1@example.com", message, "<20261201.1@clinic.example>"))


def main():
    parser = argparse.ArgumentParser(prog="python -m bench.mime", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--emails", type=int, default=500)
    options = parser.parse_args()
    for label, message in MESSAGES.items():
        cpu = {djangos: [], ours: []}
        for _ in range(options.rounds):
            for build, times in cpu.items():
                start = time.process_time()
                for _ in range(options.emails):
                    build(message)
                times.append((time.process_time() - start) * 1e6 / options.emails)
        before, after = statistics.median(cpu[djangos]), statistics.median(cpu[ours])
        print(f"{label}: Django's {before:,.0f} µs, mime.py {after:,.0f} µs CPU per email ({before / after:.0f}×)")


main()
