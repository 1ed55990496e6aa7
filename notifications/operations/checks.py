import math

from django.core import checks
from django.template import TemplateDoesNotExist
from django.template.loader import select_template


@checks.register(checks.Tags.templates)
def notification_templates_exist(app_configs, **kwargs):
    """A missing template is found at start-up, not by the first patient who needs it."""
    from notifications.messages.rendering import all_template_names, candidates

    errors = []
    for name in all_template_names():
        try:
            select_template(candidates(name))
        except TemplateDoesNotExist:
            errors.append(
                checks.Error(
                    f"Notification template {name!r} is missing",
                    hint=f"Add templates/{name} or templates/notifications/{name}.",
                    id="notifications.E001",
                )
            )
    return errors


@checks.register()
def lease_outlasts_a_send(app_configs, **kwargs):
    """A send starts only in the first half of its claim's lease, so it must fit in the other half."""
    from django.conf import settings

    from notifications.outbox.sweeps import longest_send

    longest = longest_send()
    if settings.NOTIFICATIONS_LEASE_SECONDS / 2 > longest:
        return []
    return [
        checks.Warning(
            f"NOTIFICATIONS_LEASE_SECONDS ({settings.NOTIFICATIONS_LEASE_SECONDS}) is under twice the longest "
            f"send ({longest:g} s): a slow send can outlive its lease and go out twice",
            hint="Raise NOTIFICATIONS_LEASE_SECONDS, or lower TWILIO_HTTP_TIMEOUT and EMAIL_TIMEOUT.",
            id="notifications.W001",
        )
    ]


# Seconds of a sweep's soft time limit its own start takes before its first claim (the reclaim
# query, the connection): a limit of exactly one send leaves less than one.
SWEEP_START = 1.0
SWEEP_TASK = "notifications.sweep_due"


@checks.register()
def sweep_can_claim_a_row(app_configs, **kwargs):
    """A sweep claims no more rows than its threads can send before its soft time limit: with a
    limit shorter than one send it claims none, every time, and nothing due is ever sent."""
    from django.conf import settings

    from notifications.outbox.sweeps import longest_send, sweep_capacity

    soft_limit = settings.CELERY_TASK_ANNOTATIONS.get(SWEEP_TASK, {}).get(
        "soft_time_limit", settings.CELERY_TASK_SOFT_TIME_LIMIT
    )
    if min(settings.NOTIFICATIONS_SWEEP_BATCH_SIZE, sweep_capacity(soft_limit - SWEEP_START)) >= 1:
        return []
    return [
        checks.Error(
            f"A sweep could never claim a row: its soft time limit ({soft_limit:g} s, half of "
            f"NOTIFICATIONS_LEASE_SECONDS={settings.NOTIFICATIONS_LEASE_SECONDS}), less {SWEEP_START:g} s for its "
            f"start, holds no send of {longest_send():g} s (RATE_LIMIT_MAX_WAIT={settings.RATE_LIMIT_MAX_WAIT:g} "
            f"+ the larger of 2 × TWILIO_HTTP_TIMEOUT={settings.TWILIO_HTTP_TIMEOUT:g} and "
            f"EMAIL_TIMEOUT={settings.EMAIL_TIMEOUT:g}) on NOTIFICATIONS_SEND_THREADS="
            f"{settings.NOTIFICATIONS_SEND_THREADS} thread(s), NOTIFICATIONS_SWEEP_BATCH_SIZE="
            f"{settings.NOTIFICATIONS_SWEEP_BATCH_SIZE}",
            hint=f"Raise NOTIFICATIONS_LEASE_SECONDS to at least {2 * math.ceil(longest_send() + SWEEP_START)}, or lower "
            "TWILIO_HTTP_TIMEOUT, EMAIL_TIMEOUT and RATE_LIMIT_MAX_WAIT; keep at least one send thread and a "
            "batch size of at least 1.",
            id="notifications.E005",
        )
    ]


@checks.register()
def content_templates_are_well_formed(app_configs, **kwargs):
    """TWILIO_CONTENT_SIDS names kinds we send and Content Template SIDs (HX…): a typo would
    otherwise send free-form WhatsApp messages that Twilio accepts and then fails (63016)."""
    from django.conf import settings

    from notifications.outbox.models import NotificationKind

    errors = []
    for kind, sid in settings.TWILIO_CONTENT_SIDS.items():
        if kind not in NotificationKind.values:
            errors.append(
                checks.Error(
                    f"TWILIO_CONTENT_SIDS names an unknown kind {kind!r}",
                    hint=f"Use one of {', '.join(NotificationKind.values)}.",
                    id="notifications.E002",
                )
            )
        if not (sid.startswith("HX") and len(sid) == 34 and sid[2:].isalnum()):
            errors.append(
                checks.Error(
                    f"TWILIO_CONTENT_SIDS has {sid!r} for {kind!r}, which is not a Content Template SID",
                    hint="A Content Template SID is HX followed by 32 characters (Twilio Console, Content Template Builder).",
                    id="notifications.E003",
                )
            )
    return errors


# RETURNING from a multi-row INSERT (planning) and UPDATE … FROM (the outcome write).
SQLITE_NEEDED = (3, 35)


@checks.register()
def sqlite_is_recent_enough(app_configs, **kwargs):
    """On an older SQLite every booking and every outcome write would fail at run time, a sent
    message's outcome among them (its lease would then send it again): refused at start-up. The
    version is the library's, so no connection is made."""
    from django.db import connections

    errors = []
    for connection in connections.all():
        if connection.vendor == "sqlite" and connection.Database.sqlite_version_info < SQLITE_NEEDED:
            errors.append(
                checks.Error(
                    f"Database {connection.alias!r} is SQLite {connection.Database.sqlite_version}; notifications needs "
                    f"{'.'.join(map(str, SQLITE_NEEDED))} or later",
                    hint="Use PostgreSQL (DATABASE_URL), or a Python built with a newer SQLite.",
                    id="notifications.E004",
                )
            )
    return errors


@checks.register()
def every_contact_channel_has_a_channel(app_configs, **kwargs):
    """A patient may choose only channels a message can go by: appointments names them
    (ContactChannel), the channel registry sends them; the two lists must be the same."""
    from appointments.models import ContactChannel
    from notifications.channels import CHANNEL_NAMES

    if set(ContactChannel.values) == set(CHANNEL_NAMES):
        return []
    return [
        checks.Error(
            f"Patients may choose {sorted(ContactChannel.values)} but the channels are {sorted(CHANNEL_NAMES)}",
            hint="Add the channel to notifications/channels/ and to appointments.models.ContactChannel together.",
            id="notifications.E010",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def email_service_webhooks_are_authenticated(app_configs, **kwargs):
    """With an email service as the backend, its tracking webhooks settle rows, mark addresses
    dead and opt patients out: anymail must refuse a post it cannot authenticate (it only warns)."""
    from django.conf import settings

    backend = settings.EMAIL_BACKEND
    if not backend.startswith("anymail.backends.") or backend.startswith("anymail.backends.test."):
        return []
    anymail = getattr(settings, "ANYMAIL", {})
    if anymail.get("WEBHOOK_SECRET") or any(
        name.endswith("_WEBHOOK_SIGNING_KEY") and value for name, value in anymail.items()
    ):
        return []
    return [
        checks.Error(
            f"EMAIL_BACKEND is {backend}, but its tracking webhooks are not authenticated.",
            hint="Set ANYMAIL_WEBHOOK_SECRET (user:password, for basic auth) or the service's "
            "ANYMAIL_<ESP>_WEBHOOK_SIGNING_KEY.",
            id="notifications.E012",
        )
    ]
