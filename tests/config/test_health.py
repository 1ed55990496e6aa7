"""GET /healthz (does the database answer, does the broker answer) and the API's OpenAPI schema.
Both are open to anyone: a load balancer and an API client ask without credentials."""

import socket
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone


@pytest.fixture
def closed_port():
    """A loopback port bound but not listening: connecting to it is refused at once. It stays
    bound for the test, so nothing else can start listening there meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def silent_port():
    """A loopback port that accepts connections (the kernel completes them) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


def test_healthz_reports_database_and_broker_ok(client, db, settings, redis_url):
    settings.REDIS_URL = redis_url

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok", "backlog": "ok"}


def test_healthz_needs_no_credentials(client, db, settings, django_user_model, redis_url):
    settings.REDIS_URL = redis_url
    assert not django_user_model.objects.exists()

    response = client.get("/healthz")

    assert response.status_code == 200


# How fast /healthz answers a broker that is down is shown by its causes, not timed: the check
# tries once (no client's retry loop sleeps) and a hanging broker ends on the socket's timeout.


def test_healthz_is_503_naming_the_broker_when_redis_refuses(client, db, settings, closed_port, broker_client_sleeps):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down: ConnectionError", "backlog": "ok"}
    assert broker_client_sleeps == {"kombu": [], "redis": []}


def test_healthz_is_503_on_its_socket_timeout_when_redis_never_answers(
    client, db, settings, silent_port, broker_client_sleeps
):
    settings.REDIS_URL = f"redis://127.0.0.1:{silent_port}/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down: TimeoutError", "backlog": "ok"}
    assert broker_client_sleeps == {"kombu": [], "redis": []}


def test_schema_is_an_openapi_3_document(client, db):
    response = client.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert str(schema["openapi"]).startswith("3")


def test_schema_lists_the_api_paths(client, db):
    schema = yaml.safe_load(client.get("/api/schema/").content)

    paths = ["/api/appointments/", "/api/appointments/{id}/reschedule/", "/api/notifications/", "/api/inbox/"]
    assert [path for path in paths if path not in schema["paths"]] == []


def test_schema_is_served_as_json_on_request(client, db):
    response = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})

    assert response.status_code == 200
    assert str(response.json()["openapi"]).startswith("3")


def test_api_docs_page_answers(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"/api/schema/" in response.content


def test_healthz_reports_a_backlog_whose_oldest_due_row_waited_past_the_threshold(client, book, settings, redis_url):
    # Issue 27, finding 5: a sweep that can claim nothing leaves the due rows waiting, silently.
    settings.REDIS_URL = redis_url
    settings.NOTIFICATIONS_BACKLOG_STALLED_SECONDS = 900
    appointment = book()  # no worker: its confirmations stay due
    appointment.notifications.filter(kind="booking_confirmation").update(
        scheduled_for=timezone.now() - timedelta(seconds=1000)
    )

    response = client.get("/healthz")

    # Still 200: the web tier is fine, and a load balancer that took it out would cure nothing.
    assert response.status_code == 200
    body = response.json()
    assert (body["database"], body["broker"]) == ("ok", "ok")
    assert body["backlog"].startswith("stalled: the oldest due row has waited 1000 s")
    assert "NOTIFICATIONS_BACKLOG_STALLED_SECONDS=900" in body["backlog"]


def test_healthz_reports_a_backlog_within_the_threshold_ok(client, book, settings, redis_url):
    settings.REDIS_URL = redis_url
    settings.NOTIFICATIONS_BACKLOG_STALLED_SECONDS = 900
    appointment = book()
    appointment.notifications.filter(kind="booking_confirmation").update(
        scheduled_for=timezone.now() - timedelta(seconds=800)
    )

    assert client.get("/healthz").json()["backlog"] == "ok"
