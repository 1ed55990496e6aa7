"""The broker as tests meet it: the Celery app pointed at another broker for a while, a
redis-server of a test's own as its broker, and the sleeps of the broker clients' retry loops
(what a publish waits on a broker that is down), counted rather than timed. The fixtures are
imported by tests/conftest.py."""

import threading
from contextlib import contextmanager

import kombu.utils.functional
import pytest
import redis.retry
from kombu import pools

from config.celery import app as project_app
from tests import redis_server


@contextmanager
def broker_at(url):
    """Point the Celery app at another broker for the duration.

    The app caches its broker connection pool and producer pool at the first publish, bound
    to the URL of that moment, so those references are dropped on the way in and out. The
    pools themselves live in kombu's global groups, keyed by URL: the regular broker's pools
    are left untouched there (closing them would empty them for good), and the pools made
    for the other URL are closed and removed, so no later test inherits them."""
    previous = project_app.conf.broker_url
    project_app.conf.broker_url = url
    project_app._pool = project_app.amqp._producer_pool = None
    try:
        yield
    finally:
        for group, pool in ((pools.producers, project_app.amqp._producer_pool), (pools.connections, project_app._pool)):
            if pool is not None:
                pool.force_close_all()
                for key in [key for key, value in group.items() if value is pool]:
                    dict.__delitem__(group, key)  # the group's own __delitem__ re-hashes the key
        project_app.conf.broker_url = previous
        project_app._pool = project_app.amqp._producer_pool = None


class BrokerClientSleeps(dict):
    """{"kombu": [...], "redis": [...]}: the seconds each broker client's retry loop slept, in the
    watched threads (the test's own, and any it adds to `threads`)."""

    def __init__(self):
        super().__init__(kombu=[], redis=[])
        self.threads = {threading.get_ident()}


@pytest.fixture
def broker_client_sleeps(monkeypatch):
    """The sleeps of the broker clients' own retry loops (kombu's connection retry, redis-py's
    backoff): the wait a booking would spend on a refusing broker, counted rather than timed.
    Each still sleeps."""
    slept = BrokerClientSleeps()

    def recording(name, real):
        def sleep(seconds):
            if threading.get_ident() in slept.threads:
                slept[name].append(seconds)
            real(seconds)

        return sleep

    monkeypatch.setattr(kombu.utils.functional, "sleep", recording("kombu", kombu.utils.functional.sleep))
    monkeypatch.setattr(redis.retry, "sleep", recording("redis", redis.retry.sleep))
    return slept


@pytest.fixture
def private_broker():
    """A redis-server of the test's own (tests/redis_server.py) as the Celery app's broker: what
    the test counts on it, or drops, is its own connections alone, never another suite's on a
    shared Redis."""
    server = redis_server.BundledRedis().start()
    client = server.client()
    try:
        with broker_at(server.url()):
            yield client
    finally:
        client.close()
        server.stop()
