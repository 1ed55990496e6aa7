"""The notification list's "Queue" filter: the console's lines link to these, and staff pick them."""

from django.contrib import admin
from django.utils import timezone

from notifications.outbox.models import NotificationStatus


class QueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [
            ("due", "Due now"),
            ("retrying", "Waiting for a retry"),
            ("dead", "Dead (staff to retry)"),
            ("pending", "Still to go out"),
        ]

    def queryset(self, request, queryset):
        match self.value():
            case "due":
                return queryset.due(timezone.now())
            case "retrying":
                return queryset.retrying()
            case "dead":
                return queryset.dead()
            case "pending":
                return queryset.filter(status=NotificationStatus.PENDING)
        return queryset
