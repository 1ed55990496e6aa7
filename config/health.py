"""GET /healthz: does the database answer, does the broker answer, and is the due backlog being
sent. Fast: short timeouts, and the backlog's oldest due row read through the sweep's indexes."""

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from notifications.operations.monitoring import backlog_state


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_broker():
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


@require_GET
def healthz(request):
    results = {}
    for name, check in (("database", check_database), ("broker", check_broker)):
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "down", named in the answer
            results[name] = f"down: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in results.values())
    # Reported, not a 503: the web tier answers, and a load balancer or a restart taking it out
    # would cure no stalled sweep while refusing bookings. Monitors alert on the field (and /metrics).
    results["backlog"] = "unknown: database down"
    if results["database"] == "ok":
        try:
            results["backlog"] = backlog_state(timezone.now())
        except Exception as exc:  # noqa: BLE001 - named, as the checks above are
            results["backlog"] = f"unknown: {exc.__class__.__name__}"
    return JsonResponse(results, status=200 if healthy else 503)
