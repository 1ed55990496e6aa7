"""The app's models, gathered from its rooms so that Django registers them under the
`notifications` label (the migrations and the tables are unchanged by the split into rooms).

Code inside notifications/ imports each model from its room; this module is for Django and for
code outside the app."""

from notifications.inbound.models import DeliveryReceipt, InboundAction, InboundMessage
from notifications.messages.models import MessageTemplate, MessageTemplateRevision
from notifications.outbox.models import (
    DEAD,
    DELIVERY_RANK,
    RETRYING,
    Channel,
    DeliveryStatus,
    Notification,
    NotificationAttempt,
    NotificationKind,
    NotificationStatus,
)
from notifications.outbox.undeliverable import UndeliverableAddress

__all__ = [
    "DEAD",
    "DELIVERY_RANK",
    "RETRYING",
    "Channel",
    "DeliveryReceipt",
    "DeliveryStatus",
    "InboundAction",
    "InboundMessage",
    "MessageTemplate",
    "MessageTemplateRevision",
    "Notification",
    "NotificationAttempt",
    "NotificationKind",
    "NotificationStatus",
    "UndeliverableAddress",
]
