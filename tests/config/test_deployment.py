"""The production-like deployment: docker-compose.yml, .env.example, and production settings that
refuse to start when misconfigured. Settings are read at process start, so each configuration
runs `manage.py check` (or gunicorn) in its own process."""

import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import TEST_REDIS_URL, wait_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ["migrate", "web", "worker", "beat", "flower"]
# The app services that touch the database: directly after postgres is healthy, or after migrate.
DATABASE_SERVICES = ["migrate", "web", "worker", "beat"]
DEPENDENCY_CONDITIONS = {
    "postgres": "service_healthy",
    "redis": "service_healthy",
    "migrate": "service_completed_successfully",
}
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
GOOD_PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-for-the-test-0123456789",
    "DJANGO_ALLOWED_HOSTS": "notifications.example.org",
    "EMAIL_BACKEND": "smtp",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "a-real-looking-auth-token",
    "TWILIO_PHONE_NUMBER": "+15005550006",
}


def production_env(tmp_path, **overrides):
    """This process's environment without any DJANGO_* or TWILIO_* variable, on a scratch SQLite
    database, with the given production variables (None removes one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TWILIO_", "LOG_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}", REDIS_URL=TEST_REDIS_URL)
    env.update(GOOD_PRODUCTION_ENV)
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def manage_check(env):
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


# docker-compose.yml


def test_compose_names_every_service():
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "flower"} <= set(SERVICES)


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_service_waits_for_its_dependencies_to_be_ready(service):
    depends_on = SERVICES[service]["depends_on"]

    assert isinstance(depends_on, dict), "depends_on must carry conditions"
    for dependency, spec in depends_on.items():
        assert spec.get("condition") == DEPENDENCY_CONDITIONS[dependency], (dependency, spec)


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_service_waits_for_redis(service):
    assert SERVICES[service]["depends_on"]["redis"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("service", DATABASE_SERVICES)
def test_database_service_waits_for_postgres_directly_or_through_migrate(service):
    depends_on = SERVICES[service]["depends_on"]

    assert "postgres" in depends_on or "migrate" in depends_on
    if "migrate" in depends_on:
        assert SERVICES["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


@pytest.mark.parametrize("service", ["postgres", "redis", "web"])
def test_service_has_a_healthcheck(service):
    assert SERVICES[service]["healthcheck"]["test"]


@pytest.mark.parametrize("service", ["postgres", "redis"])
def test_stateful_service_keeps_its_data_in_a_declared_volume(service):
    named = {mount.split(":", 1)[0] for mount in SERVICES[service]["volumes"]}

    assert named and named <= set(COMPOSE["volumes"])


@pytest.mark.parametrize("service", ["web", "flower"])
def test_published_ports_listen_on_loopback_only(service):
    """The proxy in front publishes the service; a port on every interface would bypass it."""
    ports = SERVICES[service]["ports"]

    assert ports and all(str(port).startswith("127.0.0.1:") for port in ports)


def test_the_docker_image_defaults_to_production():
    assert re.search(r"^ENV .*\bDJANGO_ENV=production\b", (ROOT / "Dockerfile").read_text(), re.MULTILINE)


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_service_runs_with_production_settings(service):
    assert SERVICES[service]["environment"]["DJANGO_ENV"] == "production"


def test_exactly_one_beat_service():
    beats = [name for name, spec in SERVICES.items() if "beat" in spec.get("command", [])]

    assert beats == ["beat"]
    assert "deploy" not in SERVICES["beat"] or SERVICES["beat"]["deploy"].get("replicas", 1) == 1


@pytest.fixture
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def production_web(tmp_path, free_port, redis_url):
    """gunicorn serving config.wsgi with production settings, as the web service runs it (after
    collectstatic, whose files whitenoise lists when gunicorn starts); its healthcheck asks the
    tests' Redis."""
    env = production_env(tmp_path)
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert collected.returncode == 0, collected.stderr
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--preload",
            "--bind",
            f"127.0.0.1:{free_port}",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def listening():
        assert server.poll() is None, f"gunicorn exited: {server.stderr.read()}"
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", free_port)) == 0

    try:
        wait_for(listening, timeout=30)
        yield free_port, env
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_web_healthcheck_passes_against_production_settings(production_web):
    """The web service's healthcheck command, run beside gunicorn with the service's environment,
    succeeds: the request it makes is one the production settings accept."""
    port, env = production_web
    test = SERVICES["web"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    command = [
        sys.executable if part == "python" else part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in test[1:]
    ]
    assert any(f"127.0.0.1:{port}" in part for part in command), "the healthcheck should ask the local web server"

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    assert result.returncode == 0, result.stderr


def test_production_answers_https_requests_with_hsts(production_web):
    port, env = production_web
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz",
        headers={"Host": env["DJANGO_ALLOWED_HOSTS"], "X-Forwarded-Proto": "https"},
    )
    try:
        response = urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as exc:  # 503 when the broker is not up: headers all the same
        response = exc

    assert "max-age=31536000" in response.headers["Strict-Transport-Security"]


def test_production_serves_the_api_docs_assets_itself(production_web):
    """gunicorn alone (whitenoise) serves what collectstatic gathered, as the web service runs it."""
    port, env = production_web
    host = {"Host": env["DJANGO_ALLOWED_HOSTS"]}
    script = "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"

    page = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/docs/", headers=host))
    asset = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{script}", headers=host))

    assert script in page.read().decode()
    assert asset.status == 200


# .env.example


@pytest.mark.parametrize(
    "name", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "TWILIO_AUTH_TOKEN", "FLOWER_BASIC_AUTH"]
)
def test_env_example_mentions(name):
    assert re.search(rf"^{name}=", ENV_EXAMPLE, re.MULTILINE)


def test_every_env_example_variable_is_read_somewhere():
    """No typo'd variable: each is read by the settings, interpolated by compose, or (FLOWER_*)
    read by Flower itself."""
    names = re.findall(r"^([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE, re.MULTILINE)
    readers = (ROOT / "config" / "settings.py").read_text() + (ROOT / "docker-compose.yml").read_text()

    unread = [
        n for n in names if not n.startswith("FLOWER_") and f'"{n}"' not in readers and f"${{{n}}}" not in readers
    ]

    assert names and not unread


# Production settings refuse to start misconfigured.


@pytest.mark.parametrize(
    "overrides, variable",
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG"),
        ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS"),
        ({"DJANGO_ALLOWED_HOSTS": None}, "DJANGO_ALLOWED_HOSTS"),
        ({"EMAIL_BACKEND": None}, "EMAIL_BACKEND"),
        ({"EMAIL_BACKEND": "console"}, "EMAIL_BACKEND"),
        ({"EMAIL_BACKEND": "locmem"}, "EMAIL_BACKEND"),
        ({"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, "EMAIL_BACKEND"),
        ({"TWILIO_ACCOUNT_SID": ""}, "SMS_BACKEND"),
        ({"SMS_BACKEND": "console"}, "SMS_BACKEND"),
        ({"SMS_BACKEND": "locmem"}, "SMS_BACKEND"),
        ({"DJANGO_SECRET_KEY": "change-me-to-a-long-random-string"}, "DJANGO_SECRET_KEY"),
        ({"DATABASE_URL": "postgres://notifications:change-me@postgres:5432/notifications"}, "DATABASE_URL"),
        ({"FLOWER_BASIC_AUTH": "ops:change-me"}, "FLOWER_BASIC_AUTH"),
    ],
    ids=[
        "no-secret-key",
        "empty-secret-key",
        "debug-on",
        "empty-allowed-hosts",
        "no-allowed-hosts",
        "email-default-console",
        "email-console",
        "email-locmem",
        "email-console-dotted",
        "sms-default-console",
        "sms-console",
        "sms-locmem",
        "placeholder-secret-key",
        "placeholder-postgres-password",
        "placeholder-flower-password",
    ],
)
def test_production_refuses_to_start_with_one_line_naming_the_variable(tmp_path, overrides, variable):
    result = manage_check(production_env(tmp_path, **overrides))

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]


def test_production_starts_when_configured(tmp_path):
    result = manage_check(production_env(tmp_path))

    assert result.returncode == 0, result.stderr


# The client's address: the proxy in front is trusted for X-Forwarded-For, and only it.


def test_compose_trusts_the_one_proxy_in_front_of_web():
    """web publishes on loopback only, behind the host's TLS-terminating proxy (README, Deploying):
    the socket's address is that proxy's for every client, the last X-Forwarded-For entry the client's."""
    assert SERVICES["web"]["environment"]["TRUSTED_PROXY_COUNT"] == "${TRUSTED_PROXY_COUNT:-1}"
    assert all(str(port).startswith("127.0.0.1:") for port in SERVICES["web"]["ports"])


def drf_setting(env, name):
    code = (
        f"import django; django.setup(); from rest_framework.settings import api_settings; print(api_settings.{name})"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("value, num_proxies", [(None, "0"), ("", "0"), ("2", "2")])
def test_trusted_proxy_count_sets_drf_num_proxies(value, num_proxies):
    env = {k: v for k, v in os.environ.items() if k != "TRUSTED_PROXY_COUNT"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    if value is not None:
        env["TRUSTED_PROXY_COUNT"] = value

    result = drf_setting(env, "NUM_PROXIES")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == num_proxies


@pytest.mark.parametrize("value", ["-1", "one"])
def test_a_bad_trusted_proxy_count_is_refused_naming_it(value):
    env = {k: v for k, v in os.environ.items()} | {"DJANGO_SETTINGS_MODULE": "config.settings"}

    result = drf_setting(env | {"TRUSTED_PROXY_COUNT": value}, "NUM_PROXIES")

    assert result.returncode != 0
    assert "TRUSTED_PROXY_COUNT" in result.stderr.strip().splitlines()[-1]
