from django.contrib import admin

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
