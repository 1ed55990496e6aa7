"""The baseline's task: it does nothing but count itself, so the benchmark knows when all ran.
The worker loads it with `-I bench.tasks`."""

import functools

import redis
from celery import shared_task
from django.conf import settings

COUNTER_KEY = "bench:noop:done"


@functools.cache
def counter():
    return redis.Redis.from_url(settings.REDIS_URL)


@shared_task(name="bench.noop")
def noop():
    counter().incr(COUNTER_KEY)
