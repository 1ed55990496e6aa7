"""Per-provider send rate limits, shared by every worker: a token bucket in Redis.

Twilio accepts a bounded number of messages per second per sender; past it, it answers 429.
Each send takes a token first; a send that finds none within a short wait goes back to the
queue for the next sweep, and that is not counted as an attempt."""

import functools
import logging
import time
from datetime import timedelta

from django.conf import settings

from notifications.channels import get_channel

logger = logging.getLogger(__name__)

# Refill, take one token if there is one, else say how long until there is. The bucket holds
# at most one second's worth of tokens, so a burst never exceeds the rate by more than that.
TAKE_TOKEN = """
local rate = tonumber(ARGV[1])
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or rate
local at = tonumber(state[2]) or now
tokens = math.min(rate, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], 60)
return tostring(wait)
"""


def limit_for(provider):
    """Sends per second allowed for the provider, or 0 for no limit."""
    return {"twilio": settings.TWILIO_MAX_SENDS_PER_SECOND, "email": settings.EMAIL_MAX_SENDS_PER_SECOND}[provider]


@functools.lru_cache(maxsize=4)
def _bucket(redis_url):
    """The token-taking script on a client of this Redis, and the error its calls raise."""
    # Imported here, once a limit is set, not with the module: a process whose providers have no
    # limit (the management command, as cron starts it) never needs redis, a costly import.
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
    return client.register_script(TAKE_TOKEN), redis.RedisError


def token_interval(channel):
    """How long the channel's provider's bucket takes to refill one token."""
    provider = get_channel(channel).provider
    rate = limit_for(provider) if provider else 0
    return timedelta(seconds=1 / rate if rate else 0)


def take_token(channel, max_wait=None):
    """True when the channel's provider may take one more send now (waiting up to max_wait)."""
    provider = get_channel(channel).provider
    rate = limit_for(provider) if provider else 0
    if not rate:
        return True
    max_wait = settings.RATE_LIMIT_MAX_WAIT if max_wait is None else max_wait
    deadline = time.monotonic() + max_wait
    script, redis_error = _bucket(settings.REDIS_URL)
    while True:
        try:
            wait = float(script(keys=[f"notifications:rate:{provider}"], args=[rate]))
        except redis_error as exc:
            # Without Redis there is no shared count: send, and let the provider's own limit
            # (a 429, retried with backoff) be the last word.
            logger.warning("rate limit for %s unavailable (%s); sending", provider, exc.__class__.__name__)
            return True
        if wait == 0:
            return True
        if time.monotonic() + wait > deadline:
            return False
        time.sleep(wait)
