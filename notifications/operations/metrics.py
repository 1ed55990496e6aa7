"""/metrics in Prometheus's text format, computed from the database at each scrape.

Sends happen in worker processes and are scraped from the web process, so the figures come from
the rows and their attempt history, which every process writes, rather than from in-process
counters (those would need prometheus_client's multiprocess files, shared by every worker and web
process of a host, and would still miss other hosts' workers). The counters and the histogram count
the attempts finished since midnight UTC (the counters with midnight as their `_created` time):
to Prometheus they reset once a day, as a restarted exporter's do, and the nightly purge (rows
months old) never lowers them."""

import hmac
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from appointments.models import ContactCodeSent
from notifications.operations.monitoring import backlog_stalled, counts_by_status_and_channel, oldest_due_age
from notifications.outbox.models import Channel, Notification, NotificationAttempt

# Upper bounds of the send latency histogram's buckets, in seconds: a provider's API call takes
# tenths of a second, a slow one seconds, a timed-out one TWILIO_HTTP_TIMEOUT or EMAIL_TIMEOUT.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def midnight_utc(now):
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


class NotificationCollector:
    """The queue (rows by status and channel, the due backlog and its oldest row's age) and
    today's sends (attempts and errors by channel, their latency) as metric families."""

    def collect(self):
        now = timezone.now()
        yield from queue_metrics(now)
        yield from send_metrics(midnight_utc(now))


def queue_metrics(now):
    rows = GaugeMetricFamily(
        "notifications_rows", "Notification rows by status and channel.", labels=["status", "channel"]
    )
    for status, by_channel in counts_by_status_and_channel(Notification.objects.all()).items():
        for channel in Channel.values:
            rows.add_metric([status, channel], by_channel.get(channel, 0))
    yield rows
    yield GaugeMetricFamily(
        "notifications_due_rows", "Rows due to be sent now.", value=Notification.objects.due(now).count()
    )
    age = oldest_due_age(now)
    yield GaugeMetricFamily(
        "notifications_oldest_due_age_seconds",
        "How long the longest-waiting due row has waited (0 when none is due).",
        value=age or 0,
    )
    yield GaugeMetricFamily(
        "notifications_backlog_stalled",
        "1 when the oldest due row has waited past notifications_backlog_stalled_after_seconds: nothing sends the backlog.",
        value=int(backlog_stalled(age)),
    )
    yield GaugeMetricFamily(
        "notifications_backlog_stalled_after_seconds",
        "NOTIFICATIONS_BACKLOG_STALLED_SECONDS: the wait of a due row past which the backlog counts as stalled.",
        value=settings.NOTIFICATIONS_BACKLOG_STALLED_SECONDS,
    )


def send_metrics(since):
    created = since.timestamp()
    attempts = NotificationAttempt.objects.filter(finished_at__gte=since)
    outcomes = CounterMetricFamily(
        "notifications_send_attempts",
        "Send attempts finished today (UTC) by channel and outcome.",
        labels=["channel", "outcome"],
        created=created,
    )
    for row in attempts.values("notification__channel", "outcome").annotate(n=Count("id")).order_by():
        outcomes.add_metric([row["notification__channel"], row["outcome"]], row["n"], created=created)
    yield outcomes

    errors = CounterMetricFamily(
        "notifications_send_errors",
        "Failed send attempts finished today (UTC) by channel and the provider's error code.",
        labels=["channel", "error_code"],
        created=created,
    )
    failed = attempts.exclude(error_code="").values("notification__channel", "error_code").annotate(n=Count("id"))
    for row in failed.order_by():
        errors.add_metric([row["notification__channel"], row["error_code"]], row["n"], created=created)
    yield errors

    yield latency_histogram(attempts)
    yield verification_codes(since)


def verification_codes(since):
    """Today's verification codes (appointments/contact.py) by channel: a burst is SMS pumping."""
    created = since.timestamp()
    sent = CounterMetricFamily(
        "verification_codes_sent",
        "Verification codes for a patient's new email or phone sent today (UTC), by channel.",
        labels=["channel"],
        created=created,
    )
    counts = dict(
        ContactCodeSent.objects.filter(sent_at__gte=since).values_list("field").annotate(n=Count("id")).order_by()
    )
    for field, channel in (("email", Channel.EMAIL), ("phone", Channel.SMS)):
        sent.add_metric([channel], counts.get(field, 0), created=created)
    return sent


def latency_histogram(attempts):
    """Seconds from claim to outcome of today's attempts, by channel: one query, a count per bucket."""
    latency = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le_{i}": Count("id", filter=Q(latency__lte=timedelta(seconds=b))) for i, b in enumerate(LATENCY_BUCKETS)
    }
    per_channel = (
        attempts.filter(started_at__isnull=False)
        .annotate(latency=latency)
        .values("notification__channel")
        .annotate(count=Count("id"), total=Sum("latency"), **buckets)
        .order_by()
    )
    histogram = HistogramMetricFamily(
        "notifications_send_latency_seconds",
        "Seconds from a send's claim to its outcome, for attempts finished today (UTC), by channel.",
        labels=["channel"],
    )
    for row in per_channel:
        cumulative = [(str(b), row[f"le_{i}"]) for i, b in enumerate(LATENCY_BUCKETS)] + [("+Inf", row["count"])]
        histogram.add_metric([row["notification__channel"]], cumulative, row["total"].total_seconds())
    return histogram


def render():
    """The metrics page: (body, content type)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(NotificationCollector())


@require_GET
def metrics_view(request):
    """GET /metrics: for staff signed in who may view notifications (as the dashboard), or a scraper
    sending `Authorization: Bearer <METRICS_TOKEN>`."""
    user = request.user
    if not (bearer_token_matches(request) or (user.is_staff and user.has_perm("notifications.view_notification"))):
        status = 403 if request.user.is_authenticated else 401
        refusal = JsonResponse({"Authorization": ["Sign in as staff, or send Bearer <METRICS_TOKEN>."]}, status=status)
        refusal["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return refusal
    body, content_type = render()
    return HttpResponse(body, content_type=content_type)


def bearer_token_matches(request):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    expected = settings.METRICS_TOKEN
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
    given = token.strip().encode("utf-8", "surrogatepass")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(given, expected.encode("utf-8"))
