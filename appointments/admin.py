from django.contrib import admin

from . import services
from .models import Appointment, Patient


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "phone", "timezone", "channels", "opted_out"]
    search_fields = ["name", "email", "phone"]


@admin.register(Appointment)
class AppointmentAdmin(admin.ModelAdmin):
    list_display = ["patient", "provider", "starts_at", "status", "location"]
    list_filter = ["status", "provider"]
    search_fields = ["patient__name", "provider", "location"]
    date_hierarchy = "starts_at"
    raw_id_fields = ["patient"]
    # Time and status change through the reschedule and cancel endpoints, which notify the patient.
    readonly_fields = ["status", "cancel_reason"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["starts_at", "patient"] if obj else [])

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # A booking made in the admin notifies the patient like one made through the API.
        fields = {
            name: form.cleaned_data[name]
            for name in ("patient", "provider", "starts_at", "duration_minutes", "location", "reason")
        }
        obj.pk = services.book(**fields).pk
