from django.contrib import admin, messages

from appointments.admin import PatientAdmin
from appointments.models import Patient
from appointments.trail import PatientDataPages
from notifications.inbound.models import InboundMessage
from notifications.outbox.dispatch import enqueue
from notifications.outbox.models import Notification, NotificationAttempt


class AttemptInline(admin.TabularInline):
    model = NotificationAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "finished_at", "outcome", "error_code", "error", "provider_message_id"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(PatientDataPages, admin.ModelAdmin):
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
    inlines = [AttemptInline]
    actions = ["retry_selected", "cancel_selected"]

    # Read-only: a row's recipient, context, channel and times are the planner's, and its status
    # changes only through the state machine's transitions (the actions below).
    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_retry_permission(self, request):
        # The API's retry checks the same permission (notifications/outbox/api.py).
        return request.user.has_perm("notifications.retry_notification")

    @admin.action(description="Retry selected failed notifications", permissions=["retry"])
    def retry_selected(self, request, queryset):
        ids = list(queryset.filter(status="failed").values_list("id", flat=True))
        count = Notification.objects.filter(pk__in=ids).retry()
        enqueue(ids)
        self.message_user(request, f"{count} notification(s) queued again.", messages.SUCCESS)

    @admin.action(description="Cancel selected notifications still to go out", permissions=["change"])
    def cancel_selected(self, request, queryset):
        count = queryset.withdraw()
        self.message_user(request, f"{count} notification(s) cancelled.", messages.SUCCESS)


class InboundMessageInline(admin.TabularInline):
    """A patient's messages to the clinic, on the patient's page."""

    model = InboundMessage
    fk_name = "patient"
    extra = 0
    can_delete = False
    fields = ["received_at", "channel", "body", "action", "appointment"]
    readonly_fields = fields
    ordering = ["-received_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    """What patients texted us; read-only, a record of what they said and what it did."""

    list_display = ["received_at", "channel", "from_number", "patient", "action", "body"]
    list_filter = ["action", "channel", "received_at"]
    search_fields = ["body", "from_number", "patient__name"]
    date_hierarchy = "received_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PatientWithMessagesAdmin(PatientAdmin):
    inlines = [*PatientAdmin.inlines, InboundMessageInline]


# The appointments app knows nothing of notifications: its patient page gains the inline here.
admin.site.unregister(Patient)
admin.site.register(Patient, PatientWithMessagesAdmin)
