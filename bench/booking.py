"""python -m bench.booking: CPU of the immediate path's two halves, and of a sweep's row, in
process, on PostgreSQL.

- The request: a staff booking through Django's request handler (the test client, no socket):
  the token's check, validation, the appointment, its planned rows and the publish of its send
  task to Redis on commit.
- The task: the send task's body for that booking's two confirmations
  (delivery.send_notifications): the claim, the sends (email to Django's locmem backend, SMS
  through the real twilio client to the stand-in, which runs in the benchmark's process), and
  the outcome write.
- The sweep: `--sweep-rows` due reminders, half email and half SMS, sent by one
  sweeps.sweep() as a sweep task's body: the process's CPU a row (its main thread's, which
  claims, reads and writes, apart), and its PostgreSQL backend's.

Each side runs in a process of its own, with its own database (BENCH_DATABASE_URL with the
side's number appended), migrated by its own tree; `--baseline DIR` adds an earlier tree (`git
archive COMMIT | tar -x -C DIR`), run round by round beside this one, each round starting one
side later. Medians of the rounds, and each side's ratio to this tree's. Nothing is asserted."""

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = "--child"


def main(argv):
    options = _parse(argv)
    os.environ.update(DJANGO_SETTINGS_MODULE="config.settings", LOG_LEVEL="WARNING")
    import django

    django.setup()
    from bench import report, services
    from bench.options import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, command_line

    sides = [("this tree", ROOT), *((Path(path).name, Path(path).resolve()) for path in options.baseline)]
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    results = {name: [] for name, _ in sides}
    with services.twilio_standin() as standin:
        numbered = list(enumerate(sides))
        for round_number in range(1, options.rounds + 1):
            # Each round starts one side later, so that no side always follows the same one.
            start = (round_number - 1) % len(numbered)
            for number, (name, tree) in numbered[start:] + numbered[:start]:
                env = services.process_env(f"{database_url}_booking{number}", redis_url, standin)
                command = [sys.executable, str(Path(__file__).resolve()), CHILD]
                command += [str(options.bookings), str(options.sweep_rows)]
                answer = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
                if answer.returncode:
                    sys.exit(f"{name}: {answer.stderr.strip().splitlines()[-1] if answer.stderr else 'failed'}")
                results[name].append(json.loads(answer.stdout.strip().splitlines()[-1]))
                print(f"round {round_number}, {name}: {results[name][-1]}", file=sys.stderr, flush=True)
    table = _table(results, sides[0][0])
    print(table)
    if options.section:
        heading = f"- Command: `{command_line(argv, 'bench.booking')}`\n- Machine load average (1 min) at the end: "
        report.write(options.output, options.section, f"{heading}{os.getloadavg()[0]:.1f}\n\n{table}")


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.booking", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bookings", type=int, default=300, help="bookings a side makes a round (default 300)")
    parser.add_argument("--sweep-rows", type=int, default=3000, help="due rows a side sweeps a round (default 3,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, every side once a round (default 3)")
    parser.add_argument("--baseline", metavar="DIR", action="append", default=[], help="an earlier tree (repeatable)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "PERFORMANCE.md", help="the Markdown file")
    parser.add_argument("--section", help="the section of the output the table goes in (none: print only)")
    options = parser.parse_args(argv)
    if min(options.bookings, options.sweep_rows, options.rounds) < 1:
        parser.error("--bookings, --sweep-rows and --rounds must be positive")
    return options


COLUMNS = {
    "request_ms": "CPU ms a booking request",
    "task_ms": "CPU ms a booking's send task",
    "sweep_ms": "CPU ms a sweep row",
    "sweep_main_ms": "of which the main thread",
    "sweep_postgresql_ms": "PostgreSQL backend ms a sweep row",
}


def _table(results, reference):
    medians = {
        name: {key: statistics.median(run[key] for run in runs) for key in COLUMNS} for name, runs in results.items()
    }
    lines = [
        "| Side | " + " | ".join(f"{title} | ÷ this tree" for title in COLUMNS.values()) + " |",
        "| --- |" + " --- | --- |" * len(COLUMNS),
    ]
    for name, median in medians.items():
        cells = [f"{median[key]:.2f} | {median[key] / medians[reference][key]:.2f}×" for key in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def child(bookings, sweep_rows):
    """One side's round, in its own tree (the working directory): book, then send, then sweep,
    and print the CPU milliseconds of each half per booking and of a sweep's row as one line of
    JSON."""
    sys.path[0] = os.getcwd()  # the side's tree, not bench/ (whose tasks.py would hide the project's tasks/)
    import django
    import psycopg
    import redis

    django.setup()
    from datetime import timedelta

    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from appointments.models import Appointment
    from bench import workload
    from notifications.models import Notification

    delivery = _first_module("notifications.outbox.delivery", "notifications.delivery")

    database = settings.DATABASES["default"]
    server_address = {"host": database["HOST"], "port": database["PORT"], "user": database["USER"]}
    with psycopg.connect(**server_address, dbname="postgres", autocommit=True) as server:
        if not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone():
            server.execute(f'CREATE DATABASE "{database["NAME"]}"')
    call_command("migrate", interactive=False, verbosity=0)
    workload.reset()
    token = workload.staff_token()
    patients = workload.patients(bookings + 20)
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    starts_at = (timezone.now() + timedelta(days=7)).isoformat()

    def book(patient):
        body = {
            "patient": patient.pk,
            "provider": "Dr. Bench",
            "starts_at": starts_at,
            "duration_minutes": 30,
            "location": "Room 1",
            "reason": "Benchmark",
        }
        answer = client.post("/api/appointments/", body, content_type="application/json")
        if answer.status_code != 201:
            raise SystemExit(f"booking answered {answer.status_code}: {answer.content[:200]!r}")
        return answer.json()["id"]

    def confirmations(appointment_id):
        rows = Notification.objects.filter(appointment_id=appointment_id, kind="booking_confirmation")
        return list(rows.values_list("id", flat=True))

    warm_up, measured = patients[:20], patients[20:]
    for patient in warm_up:
        delivery.send_notifications(confirmations(book(patient)))
    started = time.process_time()
    booked = [book(patient) for patient in measured]
    request_ms = (time.process_time() - started) * 1000 / bookings
    groups = [confirmations(pk) for pk in booked]
    started = time.process_time()
    for ids in groups:
        delivery.send_notifications(ids)
    task_ms = (time.process_time() - started) * 1000 / bookings
    sent = Notification.objects.filter(appointment__in=Appointment.objects.filter(pk__in=booked), status="sent")
    if sent.count() != 2 * bookings:
        raise SystemExit(f"only {sent.count()} of {2 * bookings} confirmations were sent")
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # the send tasks the bookings published
    print(json.dumps({"request_ms": round(request_ms, 3), "task_ms": round(task_ms, 3), **_sweep(sweep_rows)}))


def _sweep(rows):
    """CPU milliseconds a row of one sweep of `rows` due reminders: this process's, its main
    thread's, and its PostgreSQL backend's (from /proc: the server is on this machine)."""
    from django.db import connection

    from bench import workload

    sweeps = _first_module("notifications.outbox.sweeps", "notifications.outbox.delivery", "notifications.delivery")
    workload.due_reminders(workload.appointments(min(rows, 500)), rows)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    started = (time.process_time(), time.thread_time(), _backend_cpu_seconds(backend))
    report = sweeps.sweep()
    ended = (time.process_time(), time.thread_time(), _backend_cpu_seconds(backend))
    if report.outcomes["sent"] != rows:
        raise SystemExit(f"the sweep sent {report.outcomes['sent']} of {rows} rows")
    process, main, postgresql = ((end - start) * 1000 / rows for start, end in zip(started, ended, strict=True))
    return {"sweep_ms": round(process, 3), "sweep_main_ms": round(main, 3), "sweep_postgresql_ms": round(postgresql, 3)}


def _first_module(*names):
    """The first of these modules the side's tree has: the child runs in trees from before the
    rooms' move (notifications/delivery.py, whose sweep() moved to notifications/outbox/sweeps.py
    later) as well as after it."""
    for name in names:
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as missing:
            if not name.startswith(missing.name):
                raise
    raise SystemExit(f"none of {', '.join(names)} in this tree")


def _backend_cpu_seconds(pid):
    """The CPU time of a PostgreSQL backend on this machine (here, not in bench/services.py: the
    child imports the bench package of the side's tree, which may be older)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        raise SystemExit(f"PostgreSQL's backend {pid} is not a process of this machine") from None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    if sys.argv[1:2] == [CHILD]:
        child(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main(sys.argv[1:])
