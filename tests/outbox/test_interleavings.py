"""Issue 27's interleavings of receipts, replies, reschedules and fallbacks with claims, each
run as it happened: the real claim, the real send to the stand-in Twilio, its signed receipts
posted to our real webhook, the real reschedule. A receipt is evidence: a row whose message a
receipt shows delivered is never re-sent, killed or fallen back from, whatever its lease says;
and no message names a time the appointment no longer has."""

from collections import deque
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone

from appointments import services
from appointments.models import Patient
from notifications.channels import SendSession, get_channel
from notifications.inbound.replies import Inbound, handle_inbound
from notifications.messages.rendering import render
from notifications.models import Notification
from notifications.outbox import delivery, ratelimit, sweeps
from notifications.outbox.models import record_send_starts

PHONE = "+14155550177"
SMS_NUMBER = "+15005550006"
PATH = "/webhooks/twilio/status/"


@pytest.fixture
def callbacks_to_us(settings, live_server):
    """Twilio's status callbacks reach our webhook on the live server."""
    settings.TWILIO_STATUS_CALLBACK_URL = f"{live_server.url}{PATH}"


def sms_patient(make_patient, **fields):
    return make_patient(channels=["sms"], phone=PHONE, **fields)


def confirmation(appointment):
    return appointment.notifications.get(kind="booking_confirmation", channel="sms")


def reload(row):
    return Notification.objects.get(pk=row.pk)


def sent_by_a_worker_that_died(row):
    """Claim the row and send it to the stand-in Twilio as a worker does; the worker then dies
    before writing the outcome: the row stays `sending`. Returns the sid Twilio gave."""
    [claimed] = record_send_starts(Notification.objects.filter(pk=row.pk).claim())
    with SendSession() as session:
        return session.send(get_channel(claimed.channel), claimed, render(claimed))


def expire_lease(row):
    Notification.objects.filter(pk=row.pk).update(claimed_at=timezone.now() - timedelta(minutes=5))


# Finding 3: a reschedule withdraws every row of the old time, and a row planned before the
# appointment's last change is not sent.


def test_reschedule_withdraws_a_pending_booking_confirmation(db, book, make_patient):
    appointment = book(sms_patient(make_patient))

    services.reschedule(appointment.pk, starts_at=appointment.starts_at + timedelta(days=5))

    assert confirmation(appointment).status == "cancelled"
    (notice,) = appointment.notifications.filter(kind="reschedule")
    assert notice.status == "pending"


def test_reschedule_withdraws_a_confirmation_and_an_earlier_notice_waiting_for_a_retry(db, twilio, book, make_patient):
    appointment = book(sms_patient(make_patient))
    twilio.script(PHONE, 503)
    assert delivery.send_notification(confirmation(appointment).pk) == "failed"
    services.reschedule(appointment.pk, starts_at=appointment.starts_at + timedelta(days=5))
    first_notice = appointment.notifications.get(kind="reschedule")
    twilio.script(PHONE, 503)
    assert delivery.send_notification(first_notice.pk) == "failed"

    final_start = appointment.starts_at + timedelta(days=9)
    services.reschedule(appointment.pk, starts_at=final_start)

    assert (confirmation(appointment).status, reload(first_notice).status) == ("cancelled", "cancelled")
    # Their retry time comes: only the latest notice goes, naming the final time.
    Notification.objects.filter(appointment=appointment).retrying().update(next_attempt_at=timezone.now())
    assert sweeps.sweep().outcomes["sent"] == 1
    (sent,) = appointment.notifications.filter(status="sent")
    assert (sent.kind, datetime.fromisoformat(sent.context["starts_at"])) == ("reschedule", final_start)


def test_confirmation_claimed_before_a_reschedule_is_not_sent_after_it(db, twilio, book, make_patient):
    appointment = book(sms_patient(make_patient))
    claimed = Notification.objects.filter(pk=confirmation(appointment).pk).claim()

    services.reschedule(appointment.pk, starts_at=appointment.starts_at + timedelta(days=5))
    delivery.deliver(list(claimed))

    assert confirmation(appointment).status == "cancelled"
    assert twilio.requests == []


def test_a_move_stops_a_claimed_row_whatever_its_worker_last_read(db, twilio, book, make_patient):
    # Simulation seeds 14710866682467799437 and 6600498172468362129: the worker's read of the
    # appointment, taken with its claim, still served the hand-out after the move.
    appointment = book(sms_patient(make_patient))
    claimed = Notification.objects.filter(pk=confirmation(appointment).pk).claim()
    stalled = delivery._CurrentState(lookahead=1, max_age=float("inf"))
    stalled.offer(claimed)

    services.reschedule(appointment.pk, starts_at=appointment.starts_at + timedelta(days=5))

    assert record_send_starts(stalled.take(deque(claimed), 1)) == []
    assert confirmation(appointment).status == "cancelled"


def test_a_move_leaves_a_claimed_row_whose_send_started_to_its_worker(db, twilio, book, make_patient):
    appointment = book(sms_patient(make_patient))
    claimed = Notification.objects.filter(pk=confirmation(appointment).pk).claim()
    (started,) = record_send_starts(delivery._CurrentState(lookahead=1).take(deque(claimed), 1))

    services.reschedule(appointment.pk, starts_at=appointment.starts_at + timedelta(days=5))

    # The message may be on its way: the worker writes what became of it.
    assert reload(started).status == "sending"


# Finding 7: receipts for a row still `sending` (its worker died after Twilio took the message).


def test_receipts_for_a_row_still_sending_settle_it_and_its_lease_kills_nothing(
    transactional_db, settings, callbacks_to_us, twilio, book, make_patient
):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1  # the claim is the row's last attempt
    row = confirmation(book(sms_patient(make_patient)))
    sid = sent_by_a_worker_that_died(row)

    assert [twilio.post_status(sid, status).status for status in ("sent", "delivered")] == [200, 200]
    expire_lease(row)

    assert sweeps.reclaim_expired_leases() == {"returned": 0, "dead": 0}
    row = reload(row)
    assert (row.status, row.provider_message_id, row.delivery_status) == ("sent", sid, "delivered")
    assert not Notification.objects.filter(fallback_for=row).exists()
    sweeps.sweep()
    assert (len(twilio.accepted), mail.outbox) == (1, [])


# Finding 9: a `delivered` receipt for a row the lease killed withdraws its fallback.


def test_delivered_receipt_for_a_row_its_lease_killed_withdraws_its_fallback(
    transactional_db, settings, callbacks_to_us, twilio, book, make_patient
):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    row = confirmation(book(sms_patient(make_patient)))
    sid = sent_by_a_worker_that_died(row)
    expire_lease(row)
    assert sweeps.reclaim_expired_leases() == {"returned": 0, "dead": 1}
    fallback = Notification.objects.get(fallback_for=row)

    assert twilio.post_status(sid, "delivered").status == 200

    row = reload(row)
    assert (row.status, row.provider_message_id, row.delivery_status) == ("sent", sid, "delivered")
    assert reload(fallback).status == "cancelled"
    sweeps.sweep()
    assert mail.outbox == []


# Finding 8: the fallback of a message undelivered after a move describes the appointment now.


def test_fallback_of_a_message_undelivered_after_a_move_names_the_new_time(
    transactional_db, callbacks_to_us, twilio, book, make_patient
):
    appointment = book(sms_patient(make_patient))
    row = confirmation(appointment)
    assert delivery.send_notification(row.pk) == "sent"
    new_start = appointment.starts_at + timedelta(days=5)
    services.reschedule(appointment.pk, starts_at=new_start)

    assert twilio.post_status(reload(row).provider_message_id, "undelivered", "30003").status == 200

    fallback = Notification.objects.get(fallback_for=row)
    assert datetime.fromisoformat(fallback.context["starts_at"]) == new_start
    assert delivery.send_notification(fallback.pk) == "sent"
    assert [m.to for m in mail.outbox] == [[appointment.patient.email]]


def test_no_fallback_goes_for_an_appointment_cancelled_since(
    transactional_db, callbacks_to_us, twilio, book, make_patient
):
    appointment = book(sms_patient(make_patient))
    row = confirmation(appointment)
    assert delivery.send_notification(row.pk) == "sent"
    services.cancel(appointment.pk, reason="Unwell")

    assert twilio.post_status(reload(row).provider_message_id, "undelivered", "30003").status == 200

    fallbacks = Notification.objects.filter(fallback_for=row)
    assert [(f.status, f.last_error) for f in fallbacks] == [("skipped", "appointment cancelled")]


# Finding 11: a START the patient sent after a send began is not undone by that send's 21610.


def test_start_received_while_a_send_that_drew_21610_was_in_flight_stands(db, twilio, book, make_patient):
    patient = sms_patient(make_patient)
    row = confirmation(book(patient))
    claimed = Notification.objects.filter(pk=row.pk).claim()
    # Twilio still has the patient's STOP when the send reaches it; meanwhile they text START.
    twilio.script(PHONE, ("error", 400, 21610, "Attempt to send to unsubscribed recipient"))
    handle_inbound(Inbound(sid="SM" + "1" * 32, sender=PHONE, to=SMS_NUMBER, body="START"))

    delivery.deliver(list(claimed))

    assert reload(row).error_code == "21610"
    assert Patient.objects.get(pk=patient.pk).opted_out == []


def test_21610_without_a_later_start_opts_the_patient_out(db, twilio, book, make_patient):
    patient = sms_patient(make_patient)
    handle_inbound(Inbound(sid="SM" + "2" * 32, sender=PHONE, to=SMS_NUMBER, body="START"))
    row = confirmation(book(patient))
    twilio.script(PHONE, ("error", 400, 21610, "Attempt to send to unsubscribed recipient"))

    assert delivery.send_notification(row.pk) == "failed"

    assert Patient.objects.get(pk=patient.pk).opted_out == ["sms"]


# Finding 12: C confirms the next upcoming appointment not yet confirmed.


def test_c_twice_with_two_upcoming_appointments_confirms_both(db, book, make_patient):
    patient = sms_patient(make_patient)
    sooner = book(patient, starts_in=timedelta(days=3))
    later = book(patient, starts_in=timedelta(days=10))

    for n in (1, 2):
        handle_inbound(Inbound(sid="SM" + str(n) * 32, sender=PHONE, to=SMS_NUMBER, body="C"))

    sooner.refresh_from_db(), later.refresh_from_db()
    assert (sooner.confirmed_at is not None, later.confirmed_at is not None) == (True, True)


# Item 6a: a row deferred for want of a rate-limit token keeps a time before which it is not
# due, so the sweep does not claim it again at once (it did, 19 times in a second at 1 send/s).


def test_a_row_deferred_for_want_of_a_token_is_not_due_again_before_one_frees(db, settings, twilio, book, make_patient):
    settings.TWILIO_MAX_SENDS_PER_SECOND = 1
    settings.RATE_LIMIT_MAX_WAIT = 0
    row = confirmation(book(sms_patient(make_patient)))
    ratelimit.take_token("sms", max_wait=0)  # another worker took this second's token

    assert delivery.send_notification(row.pk) == "pending"
    deferred_at = timezone.now()

    assert Notification.objects.filter(pk=row.pk).claim(now=deferred_at) == []
    not_before = reload(row).next_attempt_at
    assert deferred_at < not_before <= deferred_at + timedelta(seconds=1)
    (claimed,) = Notification.objects.filter(pk=row.pk).claim(now=not_before)
    assert (claimed.status, claimed.attempts) == ("sending", 1)


# Item 6d: Twilio's inbound webhook carries no time of its own (MessageSid, From, To, Body, …), so
# the order is the order the messages reached us; a STOP that reached us before a START but
# whose request got the patient's lock after it must not undo the START.


def test_a_stop_that_arrived_before_a_start_applied_first_does_not_undo_it(db, make_patient):
    patient = sms_patient(make_patient, opted_out=["sms"])
    stop_arrived = timezone.now()
    start_arrived = stop_arrived + timedelta(milliseconds=30)

    handle_inbound(Inbound(sid="SM" + "3" * 32, sender=PHONE, to=SMS_NUMBER, body="START"), now=start_arrived)
    handle_inbound(Inbound(sid="SM" + "4" * 32, sender=PHONE, to=SMS_NUMBER, body="STOP"), now=stop_arrived)

    assert Patient.objects.get(pk=patient.pk).opted_out == []


def test_a_stop_after_a_start_still_opts_out(db, make_patient):
    patient = sms_patient(make_patient)
    start_arrived = timezone.now()

    handle_inbound(Inbound(sid="SM" + "5" * 32, sender=PHONE, to=SMS_NUMBER, body="START"), now=start_arrived)
    handle_inbound(
        Inbound(sid="SM" + "6" * 32, sender=PHONE, to=SMS_NUMBER, body="STOP"),
        now=start_arrived + timedelta(milliseconds=30),
    )

    assert Patient.objects.get(pk=patient.pk).opted_out == ["sms"]


def test_a_stop_stops_a_claimed_sms_not_yet_started_whatever_its_worker_last_read(db, twilio, book, make_patient):
    appointment = book(sms_patient(make_patient))
    claimed = Notification.objects.filter(pk=confirmation(appointment).pk).claim()
    stalled = delivery._CurrentState(lookahead=1, max_age=float("inf"))
    stalled.offer(claimed)

    handle_inbound(Inbound(sid="SMstop", sender=appointment.patient.phone, to="+15005550006", body="STOP"))

    assert record_send_starts(stalled.take(deque(claimed), 1)) == []
    row = confirmation(appointment)
    assert (row.status, row.last_error) == ("skipped", "patient opted out of sms")


def test_a_bounce_stops_a_claimed_email_to_that_address_not_yet_started(db, book, make_patient):
    from notifications.outbox.undeliverable import mark_undeliverable

    appointment = book(make_patient(channels=["email"], email="gone@example.com"))
    row = appointment.notifications.get(kind="booking_confirmation", channel="email")
    claimed = Notification.objects.filter(pk=row.pk).claim()

    mark_undeliverable(row, "bounced")

    assert record_send_starts(claimed) == []
    row.refresh_from_db()
    assert (row.status, row.last_error) == ("skipped", "email address reported undeliverable")
