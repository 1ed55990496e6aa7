from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from appointments.admin import PatientAdmin, PatientAdminForm
from appointments.models import Patient
from appointments.reachability import warnings_for
from appointments.trail import PatientDataPages
from notifications.channels import CHANNELS
from notifications.inbound.models import InboundMessage
from notifications.operations.admin_filters import QueueFilter
from notifications.operations.console_permissions import RETRY_PERMISSION
from notifications.operations.masking import mask_email, mask_name, mask_recipient
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
        "patient_masked",
        "kind",
        "channel",
        "recipient_masked",
        "outcome",
        "scheduled_for",
        "attempts",
        "error",
    ]
    list_select_related = ["patient"]
    list_filter = [QueueFilter, "status", "channel", "kind", "delivery_status", "scheduled_for"]
    search_fields = ["patient__name", "patient__email", "provider_message_id", "recipient"]
    date_hierarchy = "scheduled_for"
    inlines = [AttemptInline]
    actions = ["retry_selected", "cancel_selected"]

    # Read-only: a row's recipient, context, channel and times are the planner's, and its status
    # changes only through the state machine's transitions (the actions below).
    def get_readonly_fields(self, request, obj=None):
        return ["as_seen", *(field.name for field in self.model._meta.fields)]

    def get_fields(self, request, obj=None):
        return ["as_seen", *(field.name for field in self.model._meta.fields if field.name != "id")]

    @admin.display(description="what the patient saw")
    def as_seen(self, row):
        if row.rendered_html:
            return format_html(
                '<iframe sandbox="" srcdoc="{}" style="width: 46em; height: 320px"></iframe>', row.rendered_html
            )
        return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', row.rendered_text or "–")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # A row's page is a record, shown without Save buttons; the right to change rows at
        # large (obj None) stays, for the list's retry and cancel actions.
        return obj is None and super().has_change_permission(request)

    @admin.display(description="patient", ordering="patient__name")
    def patient_masked(self, row):
        return format_html(
            '<a href="{}">{}</a>', reverse("console-patient", args=[row.patient_id]), mask_name(row.patient.name)
        )

    @admin.display(description="recipient")
    def recipient_masked(self, row):
        return mask_recipient(row.recipient)

    @admin.display(description="status", ordering="status")
    def outcome(self, row):
        """The row's status and, once a receipt came, what it said (one column: the list fits 1280 px)."""
        if row.delivery_status:
            return f"{row.get_status_display()}, {row.get_delivery_status_display().lower()}"
        return row.get_status_display()

    @admin.display(description="last error")
    def error(self, row):
        code = row.delivery_error_code or row.error_code
        text = row.last_error if len(row.last_error) <= 60 else row.last_error[:59] + "…"
        return " ".join(part for part in (code, text) if part) or "–"

    def has_retry_permission(self, request):
        # The API's retry checks the same permission (notifications/outbox/api.py).
        return request.user.has_perm(RETRY_PERMISSION)

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

    list_display = ["received_at", "channel", "from_masked", "patient", "action", "body"]
    list_filter = ["action", "channel", "received_at"]
    search_fields = ["body", "from_number", "patient__name"]
    date_hierarchy = "received_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="from", ordering="from_number")
    def from_masked(self, message):
        return mask_recipient(message.from_number)


CHANNEL_CHOICES = [(name, channel.label) for name, channel in CHANNELS.items()]


class PatientChannelsForm(PatientAdminForm):
    """The patient's form with channels and opt-outs as boxes to tick, saved as the lists of
    channel names the API keeps (and checked by its serializer, as before)."""

    channels = forms.MultipleChoiceField(
        choices=CHANNEL_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="How the patient wants to hear from the clinic.",
    )
    opted_out = forms.MultipleChoiceField(
        choices=CHANNEL_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Opted out of",
        help_text="Channels the patient asked not to be sent anything on (a STOP reply ticks the channel it came by).",
    )


class PatientWithMessagesAdmin(PatientAdmin):
    form = PatientChannelsForm
    inlines = [*PatientAdmin.inlines, InboundMessageInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Saved all the same; staff hear at once of a chosen channel the patient cannot be reached on.
        for warning in warnings_for(Patient.objects.get(pk=obj.pk)):
            messages.warning(request, warning["message"])

    # Contact details masked in the list; the patient's own page shows them whole.
    list_display = ["name", "phone_masked", "email_masked", "timezone", "language", "channels", "opted_out", "story"]

    @admin.display(description="phone")
    def phone_masked(self, patient):
        return mask_recipient(patient.phone) or "–"

    @admin.display(description="email")
    def email_masked(self, patient):
        return mask_email(patient.email)

    @admin.display(description="")
    def story(self, patient):
        return format_html('<a href="{}">story</a>', reverse("console-patient", args=[patient.pk]))


# The appointments app knows nothing of notifications: its patient page gains the inline here.
admin.site.unregister(Patient)
admin.site.register(Patient, PatientWithMessagesAdmin)
