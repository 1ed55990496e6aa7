from django import forms
from django.contrib import admin, messages

from integrations.models import EventType, WebhookDelivery, WebhookEndpoint
from integrations.redrive import redrive


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=EventType.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["id", "url", "events", "created_at"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            # The one time the secret is shown: the receiver needs it to verify our signatures.
            self.message_user(
                request, f"Signing secret for {obj.url} (shown once, keep it now): {obj.secret}", messages.WARNING
            )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "response_status",
        "webhook_id",
    ]
    list_filter = ["status", "event_type"]
    search_fields = ["webhook_id"]
    actions = ["retry_selected"]

    # Read-only: a delivery's status changes only through its transitions (the action below).
    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_retry_permission(self, request):
        return request.user.has_perm("integrations.retry_webhookdelivery")

    @admin.action(description="Retry selected failed webhook deliveries", permissions=["retry"])
    def retry_selected(self, request, queryset):
        count = redrive(list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} webhook delivery(ies) queued again.", messages.SUCCESS)
