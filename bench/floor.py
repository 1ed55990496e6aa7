"""Row 7, the floor: what the parts a notification cannot do without cost on their own, in the
benchmark's process right after row 1, the worker idle. A reminder is rendered from its
templates and sent as the worker sends it (a send thread's SendSession), by email to Django's
locmem backend (which builds the MIME message) and by SMS through the real twilio client to the
stand-in (which runs in this process: the machine's busy time counts both ends and the kernel
between them). No claim, no outcome write, no database, no Celery: whatever row 3 spends beyond
their mean, over a notification half email and half SMS, is ours."""

from dataclasses import dataclass

from django.core import mail
from django.test import override_settings

from notifications.channels import SendSession, get_channel
from notifications.messages.catalog import refresh as refresh_templates
from notifications.messages.rendering import render
from notifications.models import Notification

from . import services, workload
from .measure import progress

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
WARM_UP = 20
LABELS = {"email": "an email", "sms": "an SMS"}


@dataclass
class Floor:
    count: int  # of each part
    machine_ms: dict  # part: the machine's busy milliseconds each

    @property
    def per_notification_ms(self):
        """A notification half email and half SMS: the mean of the two channels' parts."""
        return sum(self.machine_ms.values()) / 2


def floor(count, standin):
    """Each part `count` times in a row, timed by the machine's busy time."""
    progress(f"floor: {count:,} renders and sends of a reminder by email and by SMS")
    with override_settings(**_twilio_settings(standin), EMAIL_BACKEND=LOCMEM):
        machine_ms = parts_ms(count, ("email", "sms"), services.machine_busy_seconds)
    mail.outbox = []
    return Floor(count, machine_ms)


def parts_ms(count, channels, clock):
    """Milliseconds of `clock` per render and per send of a due reminder on each channel, sent
    on one SendSession as a send thread sends them (its connection opened before the timing)."""
    (appointment,) = workload.appointments(1)
    first, last = workload.due_reminders([appointment], len(channels), channels)
    rows = Notification.objects.select_related("appointment__patient", "patient").filter(pk__range=(first, last))
    by_channel = {row.channel: row for row in rows}
    refresh_templates()
    costs = {}
    with SendSession() as session:
        for channel in channels:
            notification, label = by_channel[channel], LABELS[channel]
            message = render(notification)
            costs[f"rendering {label}"] = _each_ms(count, clock, render, notification)
            costs[f"sending {label}"] = _each_ms(
                count, clock, session.send, get_channel(channel), notification, message
            )
    # Its rows are due: left, a later measurement's sweep would send them.
    appointment.patient.delete()
    return costs


def _twilio_settings(standin):
    return {
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": standin.account_sid,
        "TWILIO_AUTH_TOKEN": standin.auth_token,
        "TWILIO_API_BASE_URL": standin.base_url,
        "TWILIO_PHONE_NUMBER": "+15005550006",
    }


def _each_ms(count, clock, function, *args):
    for _ in range(WARM_UP):
        function(*args)
    before = clock()
    for _ in range(count):
        function(*args)
    return (clock() - before) * 1000 / count
