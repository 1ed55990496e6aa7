"""Posting the delivery rows: claim, sign, POST with a short timeout of its own, record the
outcome while the claim holds. Runs only in the webhooks queue's tasks (tasks/webhooks.py), never
on the patients' send threads, so a slow or failing endpoint costs patients nothing."""

import base64
import hashlib
import hmac
import logging
import time
from datetime import timedelta

import urllib3
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.models import WebhookDelivery

logger = logging.getLogger(__name__)

# No redirects and no retries of urllib3's own: anything but a 2xx is a failed attempt, retried
# by the row's backoff (a redirect would carry the signed event somewhere nobody registered).
_http = urllib3.PoolManager(retries=False, maxsize=4, block=False)
# Rows a sweep claims at a time, at most (fewer when its time left holds fewer slow POSTs).
SWEEP_BATCH = 20
# Enough of an endpoint's answer to show staff why it failed.
ANSWER_KEPT = 500


def sign(secret, webhook_id, timestamp, body):
    """Standard Webhooks: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` keyed with the
    secret's decoded bytes (the part after `whsec_`)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers_for(delivery, timestamp):
    return {
        "content-type": "application/json",
        "user-agent": "clinic-notifications-webhooks",
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(delivery.endpoint.secret, delivery.webhook_id, timestamp, delivery.body),
    }


def post(delivery):
    """POST one claimed delivery; returns (HTTP status or None, error)."""
    timeout = settings.WEBHOOKS_HTTP_TIMEOUT
    try:
        answer = _http.request(
            "POST",
            delivery.endpoint.url,
            body=delivery.body.encode(),
            headers=headers_for(delivery, int(time.time())),
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            redirect=False,
            preload_content=False,
        )
        try:
            text = answer.read(ANSWER_KEPT, decode_content=False).decode("utf-8", "replace")
        finally:
            answer.release_conn()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the endpoint is this attempt's failure
        return None, f"{exc.__class__.__name__}: {exc}"[:ANSWER_KEPT]
    if 200 <= answer.status < 300:
        return answer.status, ""
    return answer.status, f"HTTP {answer.status}: {text}"


def deliver(deliveries):
    """POST claimed rows one after another (a webhooks worker's processes run side by side) and
    record each outcome as it comes. A POST starts only in the first half of its lease, so no
    attempt outlives it and is posted again beside itself."""
    counts = {"sent": 0, "failed": 0, "deferred": 0}
    for delivery in deliveries:
        if timezone.now() > delivery.claimed_at + timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS / 2):
            delivery.back_to_queue()
            counts["deferred"] += 1
            continue
        status, error = post(delivery)
        if delivery.record_outcome(status, error):
            counts["sent" if delivery.status == "sent" else "failed"] += 1
        logger.info(
            "webhook %s %s to endpoint %s: %s",
            delivery.webhook_id,
            delivery.event_type,
            delivery.endpoint_id,
            status or error,
            extra={"webhook_id": delivery.webhook_id, "attempt": delivery.attempts, "outcome": delivery.status},
        )
    return counts


def deliver_ids(ids):
    """Post the due rows among these ids that nobody else holds (one claim for them all)."""
    return deliver(WebhookDelivery.objects.filter(pk__in=ids).claim())


def sweep(max_rows=None, time_limit=None):
    """Beat's: post due rows (pending ones a lost publish left, retries whose time has come) in
    small batches, each claimed only when its POSTs, every one as slow as the timeout allows, can
    finish within the lease's first half and the task's time limit (what is left stays due)."""
    started = time.monotonic()
    total = {"sent": 0, "failed": 0, "deferred": 0}
    handled = 0
    while max_rows is None or handled < max_rows:
        budget = settings.NOTIFICATIONS_LEASE_SECONDS / 2
        if time_limit is not None:
            budget = min(budget, time_limit - (time.monotonic() - started))
        batch = min(SWEEP_BATCH, int(budget // settings.WEBHOOKS_HTTP_TIMEOUT))
        if max_rows is not None:
            batch = min(batch, max_rows - handled)
        if batch < 1:
            break
        with transaction.atomic():
            now = timezone.now()
            ids = list(
                WebhookDelivery.objects.due(now)
                .order_by("id")
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)[:batch]
            )
            claimed = WebhookDelivery.objects.filter(pk__in=ids).claim(now) if ids else []
        if not claimed:
            break
        handled += len(claimed)
        for key, value in deliver(claimed).items():
            total[key] += value
    return total


def reclaim_expired_leases():
    returned, died = WebhookDelivery.objects.reclaim_expired()
    return {"returned": returned, "dead": died}


def purge(older_than_days, now=None):
    """Finished deliveries (sent, or dead and not re-driven) last touched before the cut-off go,
    as the notification rows do after NOTIFICATIONS_RETENTION_DAYS; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=older_than_days)
    finished = WebhookDelivery.objects.filter(status="sent") | WebhookDelivery.objects.dead()
    return finished.filter(updated_at__lt=cutoff).delete()[0]
