from django.contrib import admin, messages

from .dispatch import enqueue
from .models import Notification, NotificationAttempt


class AttemptInline(admin.TabularInline):
    model = NotificationAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "finished_at", "outcome", "error_code", "error", "provider_message_id"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "channel",
        "status",
        "scheduled_for",
        "attempts",
        "next_attempt_at",
        "delivery_status",
        "error_code",
    ]
    list_filter = ["status", "channel", "kind", "delivery_status", "scheduled_for"]
    search_fields = ["patient__name", "patient__email", "provider_message_id", "recipient"]
    date_hierarchy = "scheduled_for"
    raw_id_fields = ["appointment", "patient", "fallback_for"]
    inlines = [AttemptInline]
    actions = ["retry_selected", "cancel_selected"]
    # Status changes only through the state machine's transitions (the actions below).
    readonly_fields = [
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "last_error",
        "error_code",
        "provider_message_id",
        "delivery_status",
        "sent_at",
        "read_at",
        "created_at",
        "updated_at",
    ]

    @admin.action(description="Retry selected failed notifications")
    def retry_selected(self, request, queryset):
        ids = list(queryset.filter(status="failed").values_list("id", flat=True))
        count = Notification.objects.filter(pk__in=ids).retry()
        enqueue(ids)
        self.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)

    @admin.action(description="Cancel selected notifications still to go out")
    def cancel_selected(self, request, queryset):
        count = queryset.withdraw()
        self.message_user(request, f"{count} notification(s) cancelled.", messages.SUCCESS)
