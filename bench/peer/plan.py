"""Our side of "N emails asked for", a process of its own inside the timed window: for each of
COUNT appointments from FIRST_ID on, the booking's planning as appointments.services.book runs
it once it has written the appointment: the domain signal appointment_booked in the booking's
transaction, whose receiver plans the rows (one INSERT) and, on commit, publishes the send task
of the notice due now. The appointments are written before the window (post-office's side has
none to write); NOTIFICATIONS_REMINDER_SCHEDULE is empty, so a booking of a patient on email
plans exactly one row, its confirmation by email. Usage: plan.py FIRST_ID COUNT, run in the
side's tree (the working directory)."""

import os
import sys

sys.path[0] = os.getcwd()  # the side's tree, not bench/peer/

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from appointments.models import Appointment  # noqa: E402
from appointments.signals import appointment_booked  # noqa: E402

first, count = int(sys.argv[1]), int(sys.argv[2])
appointments = Appointment.objects.select_related("patient").filter(pk__gte=first).order_by("pk")[:count]
with override_settings(NOTIFICATIONS_REMINDER_SCHEDULE=[]):
    for appointment in appointments:
        with transaction.atomic():
            appointment_booked.send(Appointment, appointment=appointment, occurred_at=timezone.now())
