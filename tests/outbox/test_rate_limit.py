"""Per-provider rate limits: a token bucket in Redis shared by every worker."""

import pytest
import redis
from django.utils import timezone

from notifications.models import Notification, NotificationAttempt
from notifications.outbox import delivery, ratelimit, sweeps
from tests.conftest import wait_for


@pytest.fixture(autouse=True)
def empty_buckets(settings, redis_url):
    """The limiter talks to the tests' Redis, each test starting with full buckets."""
    settings.REDIS_URL = redis_url
    client = redis.Redis.from_url(redis_url)
    client.delete("notifications:rate:twilio", "notifications:rate:email")
    yield
    client.delete("notifications:rate:twilio", "notifications:rate:email")


def test_no_limit_takes_no_token(settings):
    settings.TWILIO_MAX_SENDS_PER_SECOND = 0
    assert all(ratelimit.take_token("sms", max_wait=0) for _ in range(100))


def test_bucket_holds_one_second_of_sends(settings):
    settings.TWILIO_MAX_SENDS_PER_SECOND = 5
    taken = [ratelimit.take_token("sms", max_wait=0) for _ in range(8)]
    assert taken == [True] * 5 + [False] * 3


def test_sms_and_whatsapp_share_the_twilio_bucket(settings):
    settings.TWILIO_MAX_SENDS_PER_SECOND = 2
    assert [ratelimit.take_token(c, max_wait=0) for c in ("sms", "whatsapp", "sms")] == [True, True, False]


def test_email_has_its_own_bucket(settings):
    settings.TWILIO_MAX_SENDS_PER_SECOND = 1
    settings.EMAIL_MAX_SENDS_PER_SECOND = 0
    assert ratelimit.take_token("sms", max_wait=0)
    assert ratelimit.take_token("email", max_wait=0)
    assert not ratelimit.take_token("sms", max_wait=0)


def test_send_waits_briefly_for_the_next_token(settings):
    settings.TWILIO_MAX_SENDS_PER_SECOND = 20  # a token every 50 ms
    for _ in range(20):
        ratelimit.take_token("sms", max_wait=0)
    assert ratelimit.take_token("sms", max_wait=0.5)


def test_in_app_is_never_limited(settings):
    settings.TWILIO_MAX_SENDS_PER_SECOND = settings.EMAIL_MAX_SENDS_PER_SECOND = 0.001
    assert all(ratelimit.take_token("in_app", max_wait=0) for _ in range(5))


def test_send_without_a_token_goes_back_to_pending_uncounted(db, settings, twilio, make_patient, book):
    settings.TWILIO_MAX_SENDS_PER_SECOND = 1
    settings.RATE_LIMIT_MAX_WAIT = 0
    rows = [
        book(make_patient(channels=["sms"], phone=f"+1415555020{i}")).notifications.get(kind="booking_confirmation")
        for i in range(3)
    ]

    outcomes = delivery.send_notifications([row.pk for row in rows])

    assert outcomes == {"sent": 1, "pending": 2}
    assert len(twilio.requests) == 1
    deferred = Notification.objects.filter(pk__in=[r.pk for r in rows], status="pending")
    assert [(n.attempts, n.claim_token) for n in deferred] == [(0, None), (0, None)]
    assert NotificationAttempt.objects.count() == 1


def test_deferred_row_is_sent_by_a_later_sweep(db, settings, twilio, make_patient, book):
    settings.TWILIO_MAX_SENDS_PER_SECOND = 1
    settings.RATE_LIMIT_MAX_WAIT = 0
    row = book(make_patient(channels=["sms"])).notifications.get(kind="booking_confirmation")
    ratelimit.take_token("sms", max_wait=0)  # another worker took this second's token
    assert delivery.send_notification(row.pk) == "pending"

    # Due again once the bucket can have refilled a token (a second at 1 send/s), not before.
    wait_for(lambda: Notification.objects.due(timezone.now()).filter(pk=row.pk).exists())
    settings.RATE_LIMIT_MAX_WAIT = 2
    sweeps.sweep()

    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 1)


def test_limiter_without_redis_lets_sends_through(settings):
    settings.TWILIO_MAX_SENDS_PER_SECOND = 1
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert all(ratelimit.take_token("sms", max_wait=0) for _ in range(3))
