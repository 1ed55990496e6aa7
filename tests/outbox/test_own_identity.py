"""Own identity: a row is recorded `sent` only with a message its own attempt created at Twilio.
The 1-day and 2-hour SMS reminders have the same text, so a look-up by body from the booking
time would take one for the other; a look-up only reaches back to the row's own send start."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.channels.text import send_one_off_sms
from notifications.inbound.receipts import apply_receipt
from notifications.models import Notification
from notifications.outbox import delivery, sweeps
from notifications.outbox.models import record_send_starts

PHONE = "+14155550166"


def due(row):
    Notification.objects.filter(pk=row.pk).update(scheduled_for=timezone.now() - timedelta(minutes=1))
    return row


def expire_lease(row):
    Notification.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(minutes=10))


def sent_day_before_and_due_two_hours(twilio, make_patient, book, accepted_ago):
    """An SMS patient's 1-day reminder, sent (Twilio's record of it dated accepted_ago), and
    their 2-hour reminder, due, with the same text."""
    appointment = book(make_patient(channels=["sms"], phone=PHONE))
    day_before = appointment.notifications.get(kind="reminder", scheduled_for=appointment.starts_at - timedelta(days=1))
    two_hours = appointment.notifications.get(kind="reminder", scheduled_for=appointment.starts_at - timedelta(hours=2))
    twilio.clock_skew = -accepted_ago.total_seconds()
    assert delivery.send_notification(due(day_before).pk) == "sent"
    twilio.clock_skew = 0
    day_before.refresh_from_db()
    return day_before, due(two_hours)


@pytest.fixture
def reminders(db, settings, twilio, make_patient, book):
    """The 1-day reminder went out 22 hours before the 2-hour one is due, as it does."""
    settings.NOTIFICATIONS_BACKOFF_BASE = 0
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 0
    return sent_day_before_and_due_two_hours(twilio, make_patient, book, timedelta(hours=22))


def reminder_sms(twilio):
    return [m for m in twilio.accepted if m["to"] == PHONE and "reminder" in m["body"]]


def test_reminder_claimed_and_abandoned_before_its_send_is_sent_not_taken_for_the_other(reminders, twilio):
    day_before, two_hours = reminders
    Notification.objects.filter(pk=two_hours.pk).claim()  # the claimer dies before it sends
    expire_lease(two_hours)

    assert Notification.objects.reclaim_expired() == (1, [])
    sweeps.sweep()

    two_hours.refresh_from_db()
    assert [m["body"] for m in reminder_sms(twilio)] == [day_before.rendered_text] * 2
    assert two_hours.status == "sent"
    assert two_hours.provider_message_id == reminder_sms(twilio)[1]["sid"] != day_before.provider_message_id
    assert twilio.lookups == []  # never started, so never possibly sent


def test_unanswered_send_looks_back_only_to_its_own_start(reminders, settings, twilio):
    day_before, two_hours = reminders
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    twilio.script(PHONE, ("slow", 1))
    assert delivery.send_notification(two_hours.pk) == "failed"
    twilio.accepted.pop()  # Twilio never kept the message it did not answer for

    sweeps.sweep()

    two_hours.refresh_from_db()
    assert twilio.lookups  # it looked, and found nothing of its own
    assert two_hours.status == "sent"
    assert two_hours.provider_message_id == reminder_sms(twilio)[1]["sid"] != day_before.provider_message_id


def test_look_up_passes_over_a_message_another_row_holds(transactional_db, settings, twilio, make_patient, book):
    """Within the window (here, the 1-day reminder a moment before), a message of the same text
    that another row holds is that row's, not this one's."""
    settings.NOTIFICATIONS_BACKOFF_BASE = 0
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 0
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    day_before, two_hours = sent_day_before_and_due_two_hours(twilio, make_patient, book, timedelta(0))
    twilio.script(PHONE, ("slow", 1))
    assert delivery.send_notification(two_hours.pk) == "failed"
    twilio.accepted.pop()  # Twilio never kept the message it did not answer for

    sweeps.sweep()

    two_hours.refresh_from_db()
    assert two_hours.status == "sent"
    assert two_hours.provider_message_id == reminder_sms(twilio)[1]["sid"] != day_before.provider_message_id


def test_send_started_and_abandoned_is_possibly_sent_and_found_by_its_look_up(reminders, settings, twilio):
    day_before, two_hours = reminders
    settings.TWILIO_HTTP_TIMEOUT = 0.3
    twilio.script(PHONE, ("slow", 1))
    [claimed] = Notification.objects.filter(pk=two_hours.pk).claim()
    # Handed out (its send's start recorded) and sent in a send thread, as a batch does; the
    # request reaches Twilio and the worker dies before it writes the outcome.
    claimed.patient = claimed.appointment.patient
    record_send_starts([claimed])
    with delivery.SendSession() as session, ThreadPoolExecutor(1) as pool:
        pool.submit(delivery._attempt, claimed, session).result()
    expire_lease(two_hours)

    Notification.objects.reclaim_expired()
    sweeps.sweep()

    two_hours.refresh_from_db()
    assert len(reminder_sms(twilio)) == 2
    assert two_hours.provider_message_id == reminder_sms(twilio)[1]["sid"] != day_before.provider_message_id


def test_no_two_rows_share_a_provider_message_id(reminders):
    day_before, two_hours = reminders
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.filter(pk=two_hours.pk).update(provider_message_id=day_before.provider_message_id)


def test_lookup_reads_past_the_newest_page_of_messages_to_the_number(reminders, settings, twilio):
    _, two_hours = reminders
    twilio.script(PHONE, "drop")  # Twilio takes the 2-hour reminder; its answer is lost
    assert delivery.send_notification(two_hours.pk) == "failed"
    for n in range(120):  # then other messages to the same number, before the retry looks
        send_one_off_sms(PHONE, f"Your code is {n:06d}")

    sweeps.sweep()

    two_hours.refresh_from_db()
    assert len(reminder_sms(twilio)) == 2  # the 1-day one and this one, once
    assert two_hours.provider_message_id == reminder_sms(twilio)[1]["sid"]
    assert all("DateSent>" in lookup for lookup in twilio.lookups)


def test_new_send_of_a_row_drops_the_delivery_status_of_its_old_message(reminders, twilio):
    _, two_hours = reminders
    # A row whose earlier message failed at the carrier and that then died (a receipt named it
    # while a retry was under way, the retry failed for good), put back by staff.
    Notification.objects.filter(pk=two_hours.pk).update(
        status="failed", provider_message_id="SMold", delivery_status="failed", delivery_error_code="30003"
    )
    Notification.objects.filter(pk=two_hours.pk).retry()

    assert delivery.send_notification(two_hours.pk) == "sent"

    two_hours.refresh_from_db()
    assert (two_hours.delivery_status, two_hours.delivery_error_code) == ("", "")
    apply_receipt(two_hours.provider_message_id, "delivered")
    two_hours.refresh_from_db()
    assert two_hours.delivery_status == "delivered"


def test_whatsapp_template_send_whose_answer_was_lost_is_found_not_sent_again(db, settings, twilio, make_patient, book):
    settings.NOTIFICATIONS_BACKOFF_BASE = 0
    settings.NOTIFICATIONS_UNANSWERED_GRACE = 0
    twilio.script(f"whatsapp:{PHONE}", "drop")
    appointment = book(make_patient(channels=["whatsapp"], phone=PHONE))
    row = appointment.notifications.get(kind="booking_confirmation", channel="whatsapp")
    assert delivery.send_notification(row.pk) == "failed"

    sweeps.sweep()

    row.refresh_from_db()
    assert len(twilio.sent_to(f"whatsapp:{PHONE}")) == 1
    assert (row.status, row.provider_message_id) == ("sent", twilio.accepted[0]["sid"])


def test_message_still_queued_at_twilio_is_found_by_the_look_up(reminders, twilio):
    """Twilio fills date_sent when a message leaves its queue, so DateSent does not list a
    message still queued; the look-up reads the newest messages unfiltered too."""
    _, two_hours = reminders
    twilio.held_in_queue = True
    twilio.script(PHONE, "drop")
    assert delivery.send_notification(two_hours.pk) == "failed"

    sweeps.sweep()

    two_hours.refresh_from_db()
    assert len(reminder_sms(twilio)) == 2  # the 1-day one and this one, once
    assert two_hours.provider_message_id == reminder_sms(twilio)[1]["sid"]


def both_reminders_due(make_patient, book):
    appointment = book(make_patient(channels=["sms"], phone=PHONE))
    reminders = appointment.notifications.filter(kind="reminder", channel="sms").order_by("scheduled_for")
    return [due(row) for row in reminders]


def test_send_to_a_number_with_another_send_in_doubt_waits_for_it(db, make_patient, book):
    day_before, two_hours = both_reminders_due(make_patient, book)
    (in_doubt,) = record_send_starts(Notification.objects.filter(pk=day_before.pk).claim())

    claimed = Notification.objects.filter(pk=two_hours.pk).claim()

    assert record_send_starts(claimed) == []
    two_hours.refresh_from_db()
    assert (two_hours.status, two_hours.attempts, two_hours.send_started_at) == ("pending", 0, None)
    assert two_hours.next_attempt_at > timezone.now()


def test_sends_to_one_number_in_one_batch_start_one_at_a_time(db, make_patient, book):
    day_before, two_hours = both_reminders_due(make_patient, book)

    started = record_send_starts(Notification.objects.filter(pk__in=[day_before.pk, two_hours.pk]).claim())

    assert [n.pk for n in started] == [day_before.pk]
    assert Notification.objects.get(pk=two_hours.pk).status == "pending"


def test_a_send_possibly_out_holds_back_the_next_to_its_number_until_it_is_found(reminders, settings, twilio):
    day_before, two_hours = reminders
    settings.NOTIFICATIONS_BACKOFF_BASE = 60
    twilio.script(PHONE, "drop")  # Twilio takes the 2-hour reminder; its answer is lost
    assert delivery.send_notification(two_hours.pk) == "failed"
    later = Notification.objects.create(
        appointment=two_hours.appointment,
        patient=two_hours.patient,
        kind="reminder",
        channel="sms",
        recipient=PHONE,
        scheduled_for=timezone.now() - timedelta(seconds=1),
    )

    delivery.send_notification(later.pk)

    assert Notification.objects.get(pk=later.pk).status == "pending"
    assert len(reminder_sms(twilio)) == 2  # the 1-day reminder and the 2-hour one, not yet a third


def make_due_again(*rows):
    Notification.objects.filter(pk__in=[r.pk for r in rows]).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def possibly_sent(*rows):
    Notification.objects.filter(pk__in=[r.pk for r in rows]).update(
        possibly_sent=True, send_started_at=timezone.now() - timedelta(minutes=2)
    )


def test_a_row_in_doubt_due_with_an_earlier_row_to_its_number_starts_first(db, make_patient, book):
    # Review of this round: the earlier row was kept and the row in doubt held back, and the row
    # in doubt then held the earlier one back too: neither ever started (a livelock).
    day_before, two_hours = both_reminders_due(make_patient, book)
    possibly_sent(two_hours)

    started = record_send_starts(Notification.objects.filter(pk__in=[day_before.pk, two_hours.pk]).claim())

    assert [n.pk for n in started] == [two_hours.pk]


def test_two_rows_in_doubt_to_one_number_do_not_hold_each_other_back_forever(db, make_patient, book):
    # Two rows in doubt at once (two workers starting in the same instant, or rows from before
    # this rule): the older one looks first.
    day_before, two_hours = both_reminders_due(make_patient, book)
    possibly_sent(day_before, two_hours)

    started = [
        n.pk
        for row in (two_hours, day_before)
        for n in record_send_starts(Notification.objects.filter(pk=row.pk).claim())
    ]

    assert started == [day_before.pk]


def test_sweeps_send_both_rows_when_the_later_is_in_doubt(db, twilio, make_patient, book):
    day_before, two_hours = both_reminders_due(make_patient, book)
    possibly_sent(two_hours)

    for _ in range(3):
        sweeps.sweep()
        make_due_again(day_before, two_hours)

    statuses = sorted(
        Notification.objects.filter(pk__in=[day_before.pk, two_hours.pk]).values_list("status", flat=True)
    )
    assert statuses == ["sent", "sent"]


def test_a_send_started_under_a_clock_stepped_back_is_not_withdrawn(db, make_patient, book):
    # The worker's clock steps back a second between the claim and the hand-out (an NTP step).
    day_before, _ = both_reminders_due(make_patient, book)
    (claimed,) = Notification.objects.filter(pk=day_before.pk).claim()
    record_send_starts([claimed], now=claimed.claimed_at - timedelta(seconds=1))

    assert Notification.objects.filter(pk=day_before.pk).withdraw() == 0
