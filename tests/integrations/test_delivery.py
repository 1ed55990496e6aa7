"""The delivery rows keep the outbox's guarantees: one webhook-id per event and endpoint on every
attempt, a 2xx recorded once, backoff, dead after the attempts, staff re-drive, and a lease that
returns a row whose worker died after its POST, posted again with the same webhook-id."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from appointments import services
from integrations import delivery
from integrations.models import WebhookDelivery
from tests.conftest import in_role, settled, wait_for
from tests.webhook_receiver import HANG


@pytest.fixture
def no_backoff(settings):
    """A retry is due at once (the backoff's ceiling 0), so a test need not wait for it."""
    settings.NOTIFICATIONS_BACKOFF_BASE = 0
    settings.NOTIFICATIONS_BACKOFF_MAX = 0


def test_a_500_then_a_200_reaches_the_receiver_with_one_webhook_id_and_is_recorded_once(
    endpoint, receiver, book, no_backoff
):
    endpoint(answers=[500])
    services.confirm(book().pk, by="staff")

    assert delivery.sweep() == {"sent": 1, "failed": 1, "deferred": 0}
    assert delivery.sweep() == {"sent": 0, "failed": 0, "deferred": 0}  # nothing posts it again

    row = WebhookDelivery.objects.get()
    assert [r.webhook_id for r in receiver.received] == [row.webhook_id] * 2
    assert all(r.verified for r in receiver.received)
    assert receiver.received[0].body == receiver.received[1].body
    assert receiver.accepted_ids == [row.webhook_id]
    row.refresh_from_db()
    assert (row.status, row.attempts, row.response_status, row.last_error) == ("sent", 2, 200, "")


def test_a_failing_endpoint_ends_dead_after_the_attempts_with_its_error(endpoint, receiver, book, settings, no_backoff):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    endpoint(answers=[503] * 10)
    services.confirm(book().pk, by="staff")

    delivery.sweep()

    row = WebhookDelivery.objects.get()
    assert row.is_dead and row.died_at is not None
    assert (row.attempts, row.response_status) == (3, 503)
    assert row.last_error.startswith("HTTP 503")
    assert len(receiver.received) == 3 and len({r.webhook_id for r in receiver.received}) == 1


def test_an_endpoint_that_refuses_connections_dies_with_the_error(book, settings, no_backoff):
    from integrations.models import WebhookEndpoint

    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/closed", events=["appointment.confirmed"])
    services.confirm(book().pk, by="staff")
    delivery.sweep()
    row = WebhookDelivery.objects.get()
    assert row.is_dead and row.response_status is None
    assert "Connection" in row.last_error or "refused" in row.last_error


def test_a_worker_that_died_between_its_post_and_its_outcome_leaves_the_lease_to_post_it_again(
    endpoint, receiver, book, settings
):
    endpoint()
    services.confirm(book().pk, by="staff")
    (claimed,) = WebhookDelivery.objects.claim()
    assert delivery.post(claimed) == (200, "")  # the endpoint took it; the worker dies before recording
    assert delivery.sweep()["sent"] == 0  # held by the dead worker's claim until its lease ends

    later = timezone.now() + timedelta(seconds=settings.NOTIFICATIONS_LEASE_SECONDS + 1)
    assert WebhookDelivery.objects.reclaim_expired(now=later) == (1, 0)
    assert delivery.sweep()["sent"] == 1

    assert [r.webhook_id for r in receiver.received] == [claimed.webhook_id] * 2
    assert receiver.accepted_ids == [claimed.webhook_id]  # the receiver acted once
    assert claimed.record_outcome(200) is False  # the dead worker's late outcome writes nothing
    row = WebhookDelivery.objects.get()
    assert (row.status, row.attempts) == ("sent", 2)


def test_a_slow_endpoint_does_not_delay_a_bookings_sms(
    endpoint, receiver, book, make_patient, twilio, settings, celery_worker, webhooks_worker
):
    """The webhook waits on its own queue and worker: the patient's SMS goes out while the
    endpoint still holds the POST open (causal: the endpoint is released only afterwards)."""
    settings.WEBHOOKS_HTTP_TIMEOUT = 30  # as the webhooks worker's: a POST waits for the endpoint
    endpoint(answers=[HANG])
    services.confirm(book().pk, by="staff")
    wait_for(lambda: receiver.in_flight == 1)

    patient = make_patient(channels=["sms"], phone="+14155550177")
    booked = book(patient)
    sms = settled(booked.notifications.filter(channel="sms", kind="booking_confirmation"))
    assert [n.status for n in sms] == ["sent"]
    assert [r.to for r in twilio.requests if r.to == "+14155550177"] == ["+14155550177"]
    # The webhook's POST is still open: its attempt has no outcome yet, and the endpoint holds it.
    assert WebhookDelivery.objects.get().status == "sending"
    assert receiver.in_flight == 1
    receiver.release.set()
    wait_for(lambda: WebhookDelivery.objects.filter(status="sent").exists())


def test_retry_in_the_admin_re_drives_a_dead_delivery(endpoint, receiver, book, client, staff_user, webhooks_worker):
    endpoint(answers=[500])
    services.confirm(book().pk, by="staff")
    dead = wait_for(lambda: WebhookDelivery.objects.dead().first())

    in_role(staff_user, "Clinic manager")
    client.force_login(staff_user)
    answer = client.post(
        "/admin/integrations/webhookdelivery/", {"action": "retry_selected", "_selected_action": [dead.pk]}
    )
    assert answer.status_code == 302

    wait_for(lambda: WebhookDelivery.objects.filter(pk=dead.pk, status="sent").exists())
    assert [r.webhook_id for r in receiver.received] == [dead.webhook_id] * 2
    assert receiver.accepted_ids == [dead.webhook_id]


def test_retry_needs_the_retry_permission(endpoint, book, settings, client, django_user_model):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    endpoint(answers=[500])
    services.confirm(book().pk, by="staff")
    delivery.sweep()
    dead = WebhookDelivery.objects.dead().get()
    viewer = django_user_model.objects.create_user("viewer", "v@clinic.example", "pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookdelivery"))
    client.force_login(viewer)
    client.post("/admin/integrations/webhookdelivery/", {"action": "retry_selected", "_selected_action": [dead.pk]})
    assert WebhookDelivery.objects.get(pk=dead.pk).is_dead


def test_a_sweep_claims_no_more_than_its_time_limit_can_post(endpoint, receiver, book, settings):
    """Each POST counted as slow as the timeout allows: a sweep whose time left holds no such POST
    claims nothing (it is never killed mid-POST by its time limit); one with time claims them."""
    settings.WEBHOOKS_HTTP_TIMEOUT = 1
    endpoint()
    for _ in range(3):
        services.confirm(book().pk, by="staff")
    assert delivery.sweep(time_limit=0.9) == {"sent": 0, "failed": 0, "deferred": 0}
    assert WebhookDelivery.objects.filter(status="pending", attempts=0).count() == 3
    assert delivery.sweep(time_limit=30) == {"sent": 3, "failed": 0, "deferred": 0}


def test_the_admin_shows_a_new_endpoints_secret_once(receiver, staff_user, client):
    from integrations.models import WebhookEndpoint

    client.force_login(in_role(staff_user, "Clinic manager"))
    answer = client.post(
        "/admin/integrations/webhookendpoint/add/",
        {"url": receiver.url("/admin-made"), "events": ["notification.dead", "patient.opted_in"]},
        follow=True,
    )
    made = WebhookEndpoint.objects.get()
    assert made.events == ["notification.dead", "patient.opted_in"]
    assert made.secret in answer.content.decode()
    assert made.secret not in client.get(f"/admin/integrations/webhookendpoint/{made.pk}/change/").content.decode()


def test_finished_deliveries_past_the_retention_are_purged_and_the_rest_kept(endpoint, receiver, book, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 1
    endpoint(answers=[200, 500])
    for _ in range(3):
        services.confirm(book().pk, by="staff")
    delivery.sweep(max_rows=2)  # one sent, one dead, one still pending
    assert sorted(WebhookDelivery.objects.values_list("status", flat=True)) == ["failed", "pending", "sent"]
    later = timezone.now() + timedelta(days=settings.NOTIFICATIONS_RETENTION_DAYS + 1)
    assert delivery.purge(settings.NOTIFICATIONS_RETENTION_DAYS, now=later) == 2
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["pending"]
