"""Scenario 8, the API contract as an integrator meets it: the service runs under gunicorn on the
test database, schemathesis' command line runs every phase (examples, coverage, fuzzing,
stateful, the stateful one following the schema's links from a booking to its reschedule,
cancel and notifications) with every default check (schemathesis.toml says what a check cannot
apply to, and why), and a Python client generated from /api/schema/ by openapi-python-client,
in a virtualenv of its own, drives a whole patient journey."""

import json
import re
import subprocess
import sys
import textwrap
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone

from accounts.tokens import issue_token
from appointments.models import Appointment
from notifications.models import Notification
from tests.conftest import in_role

from . import harness

# The command line of the environment running the suite (the project's .venv under `make test`).
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = harness.BASE_DIR / "schemathesis.toml"
# The generator's own environment, cached between runs (var/ is not committed); the service
# never imports it.
CLIENT_VENV = harness.BASE_DIR / "var" / "openapi-python-client"
GENERATOR = "openapi-python-client==0.29.1"
STAFF = ("contract-staff", "contract-pass-123")


@pytest.fixture
def live_service(spawn, worker_env, clinic, django_user_model):
    """gunicorn serving the API on the test database, and a staff user who can sign in. The
    sign-in throttles' counts (the database cache, which a flush leaves) start empty."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_cache")
    # Hashed as the service's own settings hash (the tests' fast hasher is not among them).
    password = PBKDF2PasswordHasher().encode(STAFF[1], PBKDF2PasswordHasher().salt())
    staff = django_user_model.objects.create(username=STAFF[0], password=password, is_staff=True)
    in_role(staff, "Clinic manager")
    # And the data-rights operations (issue 25), which no role holds, so they answer more than 403.
    rights = ("export_patient", "erase_patient", "view_accesslogentry")
    staff.user_permissions.add(*Permission.objects.filter(codename__in=rights))
    port = harness.free_port()
    spawn.start(
        "web",
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        worker_env(),
    )
    url = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return urllib.request.urlopen(f"{url}/api/schema/", timeout=5).status == 200
        except OSError:
            return False

    harness.wait_until(answers, timeout=60, message="the web server answering")
    return url, staff


def test_schemathesis_runs_every_phase_and_check_with_no_failure(live_service, tmp_path):
    """The same cases on every run (schemathesis.toml: derandomized, no stores, no adaptation to the
    answers); run in an empty directory, so no `.schemathesis/` or `.hypothesis/` left by an
    earlier run is there to be read."""
    url, staff = live_service
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/api/schema/",
        "--header",
        f"Authorization: Token {issue_token(staff)}",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "20",
        "--seed",
        "1",
        "--workers",
        "1",
        "--no-color",
    ]

    workdir = tmp_path / "schemathesis"
    workdir.mkdir()

    run = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=1200)

    output = run.stdout + run.stderr
    cases = re.search(r"(\d+) generated", output)
    failures = re.search(r"(\d+) unique failures", output)
    harness.report(
        "8a schemathesis every phase and check",
        rows=int(cases.group(1)) if cases else 0,
        sent=0,
        duplicates=0,
        lost=0,
        stuck=0,
        five_xx=output.count("ST101"),  # schemathesis' code for a server error
        failures=int(failures.group(1)) if failures else 0,
        phases="examples/coverage/fuzzing/stateful",
    )
    assert run.returncode == 0, output[-6000:]
    assert cases and int(cases.group(1)) >= 300
    # Hypothesis still caches pure functions of its code there (unicode tables, constants); no
    # example database and no run cache were written.
    assert not (workdir / ".hypothesis" / "examples").exists()
    assert not (workdir / ".schemathesis").exists()


def generator_python():
    """The generator's virtualenv, made once: its python, with the client's own dependencies."""
    python = CLIENT_VENV / "bin" / "python"
    if not (CLIENT_VENV / f".{GENERATOR}").exists():
        subprocess.run([sys.executable, "-m", "venv", str(CLIENT_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", GENERATOR], check=True, timeout=600)
        (CLIENT_VENV / f".{GENERATOR}").touch()
    return python


JOURNEY = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime, timedelta, timezone

    from client import AuthenticatedClient, Client
    from client.api.appointments import (
        appointments_cancel_create, appointments_create, appointments_notifications_list,
        appointments_reschedule_create,
    )
    from client.api.auth import auth_token_create
    from client.api.patients import patients_create
    from client.models import (
        AppointmentRequest, AuthTokenRequest, CancelRequest, PatientRequest, RescheduleRequest,
    )
    from client.models.channels_enum import ChannelsEnum

    url, username, password = sys.argv[1:4]
    # raise_on_unexpected_status: a status the schema does not list raises, as it would for a clinic.
    signed_in = auth_token_create.sync(
        client=Client(url, raise_on_unexpected_status=True),
        body=AuthTokenRequest(username=username, password=password),
    )
    api = AuthenticatedClient(url, token=signed_in.token, prefix="Token", raise_on_unexpected_status=True)
    patient = patients_create.sync(client=api, body=PatientRequest(
        name="Ada Client", email="ada.client@example.com", timezone="Europe/London",
        channels=[ChannelsEnum.EMAIL, ChannelsEnum.IN_APP],
    ))
    week = datetime.now(timezone.utc) + timedelta(days=7)
    booking = appointments_create.sync(client=api, body=AppointmentRequest(
        patient=patient.id, provider="Dr. Ada Lovelace", location="Room 4, Main Street Clinic",
        starts_at=week, duration_minutes=30,
    ))
    planned = appointments_notifications_list.sync(booking.id, client=api)
    moved = appointments_reschedule_create.sync(
        booking.id, client=api, body=RescheduleRequest(starts_at=week + timedelta(days=1))
    )
    cancelled = appointments_cancel_create.sync(booking.id, client=api, body=CancelRequest(reason="Feeling better"))
    refused = appointments_create.sync_detailed(client=api, body=AppointmentRequest(
        patient=patient.id, provider="your bank: call +1 900 555 0100", starts_at=week, duration_minutes=30,
    ))
    print(json.dumps({
        "expiry": signed_in.expiry.isoformat(),
        "patient": patient.id,
        "booking": booking.id,
        "status_after_booking": booking.status.value,
        "planned": sorted({(n.channel.value, n.kind.value) for n in planned.results}),
        "moved_to": moved.starts_at.isoformat(),
        "status_after_cancel": cancelled.status.value,
        "refused_status": int(refused.status_code),
        "refused_fields": sorted(refused.parsed.additional_properties),
    }))
    """
)


def test_a_generated_client_drives_a_whole_journey(live_service, tmp_path):
    url, _ = live_service
    python = generator_python()
    config = tmp_path / "generator.yaml"
    config.write_text("post_hooks: []\n")
    subprocess.run(
        [
            str(python.parent / "openapi-python-client"),
            "generate",
            "--url",
            f"{url}/api/schema/?format=json",
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / "client"),
            "--config",
            str(config),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (tmp_path / "journey.py").write_text(JOURNEY)

    run = subprocess.run(
        [str(python), "journey.py", url, *STAFF], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )

    assert run.returncode == 0, run.stderr[-4000:]
    seen = json.loads(run.stdout)
    booking = Appointment.objects.get(pk=seen["booking"])
    assert booking.patient_id == seen["patient"]
    assert (seen["status_after_booking"], seen["status_after_cancel"]) == ("scheduled", "cancelled")
    assert booking.status == "cancelled" and booking.cancel_reason == "Feeling better"
    assert abs(booking.starts_at - (timezone.now() + timedelta(days=8))) < timedelta(minutes=5)
    assert ["email", "booking_confirmation"] in seen["planned"]
    assert Notification.objects.filter(appointment=booking, kind="cancellation", channel="email").exists()
    assert (seen["refused_status"], seen["refused_fields"]) == (400, ["provider"])
