"""Staff re-drive failed deliveries (the admin's action; the console's, through the same call)."""

from django.db import transaction

from integrations.events import DELIVER_WEBHOOKS
from integrations.models import WebhookDelivery
from notifications.outbox.dispatch import publish


@transaction.atomic
def redrive(ids):
    """Put these failed deliveries back in the queue (same webhook-id, same body, fresh attempts)
    and publish them after the commit; returns how many went back."""
    failed = list(WebhookDelivery.objects.filter(pk__in=ids, status="failed").values_list("id", flat=True))
    count = WebhookDelivery.objects.filter(pk__in=failed).retry()
    if failed:
        transaction.on_commit(lambda: publish(DELIVER_WEBHOOKS, failed, "webhook delivery(ies)"))
    return count
