import sys

import pytest
import redis

from integrations.models import WebhookEndpoint
from tests.reliability import harness
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture
def endpoint(receiver, db):
    """Register an endpoint at a path of the receiver, which verifies with its secret."""

    def make(path="/hooks", events=None, answers=()):
        made = WebhookEndpoint.objects.create(url=receiver.url(path), events=events or ["appointment.confirmed"])
        receiver.expect(path, made.secret, *answers)
        return made

    return make


@pytest.fixture
def webhooks_worker(tmp_path, transactional_db, twilio_server, redis_url):
    """A real worker process consuming only the `webhooks` queue, as compose's webhooks-worker
    does, beside celery_worker (the patients' queue); one attempt per delivery and a POST that
    waits up to 30 s. A process of its own: two workers' event loops in one process are not."""
    redis.Redis.from_url(redis_url).delete("webhooks")
    mail = tmp_path / "mail"
    mail.mkdir()
    env = harness.subprocess_env(
        twilio_server,
        redis_url=redis_url,
        db_url=harness.database_url(),
        mail_dir=mail,
        WEBHOOKS_HTTP_TIMEOUT=30,
        NOTIFICATIONS_MAX_ATTEMPTS=1,
    )
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        "webhooks",
        "--pool",
        "solo",
        "--loglevel",
        "INFO",
    ]
    argv += ["--hostname", "webhooks@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    processes = harness.Processes(tmp_path / "logs")
    try:
        processes.start("webhooks", argv, env).wait_for_output(" ready.", 60)
        yield processes
    finally:
        processes.stop_all()
