"""The simulation's world: the virtual clock in place of Django's, the stand-in Twilio on it,
the faulty locmem email backend and anymail's webhook secrets, the clinic's systems' webhook
receiver, and settings that make a run short and decided by its seed."""

import pytest
from django.utils import timezone

from tests.simulation.edge import VirtualClock
from tests.simulation.email_service import ANYMAIL_SETTINGS
from tests.simulation.machine import Simulation
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def simulation(db, settings, twilio, monkeypatch):
    """The Simulation state machine class, ready to run (or to replay steps on)."""
    clock = VirtualClock()
    monkeypatch.setattr(timezone, "now", clock)
    settings.TWILIO_STATUS_CALLBACK_URL = "http://testserver/webhooks/twilio/status/"
    settings.TWILIO_INBOUND_URL = "http://testserver/webhooks/twilio/inbound/"
    settings.EMAIL_BACKEND = "tests.simulation.edge.FaultyEmailBackend"
    # One send thread: a sweep sends its rows in order, so a run is decided by its seed.
    settings.NOTIFICATIONS_SEND_THREADS = 1
    settings.NOTIFICATIONS_LEASE_SECONDS = 60
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    settings.NOTIFICATIONS_BACKOFF_BASE = 30.0
    settings.NOTIFICATIONS_BACKOFF_MAX = 600.0
    settings.TWILIO_MAX_SENDS_PER_SECOND = 0
    settings.EMAIL_MAX_SENDS_PER_SECOND = 0
    # The "slow" fault answers after 2.3 s; everything else answers in milliseconds, and a busy
    # machine must not make one of them time out (a run must be decided by its seed alone).
    settings.TWILIO_HTTP_TIMEOUT = 2.0
    settings.ANYMAIL = ANYMAIL_SETTINGS
    # The clinic's endpoint answers on loopback in milliseconds; a hang costs a step this long.
    settings.WEBHOOKS_HTTP_TIMEOUT = 1.0
    receiver = WebhookReceiver()
    Simulation.twilio, Simulation.clock, Simulation.receiver = twilio, clock, receiver
    yield Simulation
    Simulation.twilio = Simulation.clock = Simulation.receiver = None
    receiver.stop()


@pytest.fixture
def replay(simulation):
    """A Replay of the simulation's steps (tests/simulation/test_regressions.py)."""
    from tests.simulation.replay import Replay

    steps = Replay(simulation)
    yield steps
    steps.close()
