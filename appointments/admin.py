from django import forms
from django.conf import settings
from django.contrib import admin
from django.db import models

from . import services
from .horizon import check_horizon
from .models import Appointment, Clinic, Location, Patient, Provider
from .trail import PatientDataPages


class PatientAdminForm(forms.ModelForm):
    """Checked by the API's own serializer, so the admin takes exactly what the API takes (channels
    and opted_out among the channels, E.164 phones, IANA time zones, a free sign-in email)."""

    # The languages offered now (settings.LANGUAGES), not those of a migration.
    language = forms.ChoiceField(choices=lambda: settings.LANGUAGES, initial=lambda: settings.LANGUAGE_CODE)

    class Meta:
        model = Patient
        fields = ["name", "email", "phone", "timezone", "language", "channels", "opted_out"]

    def clean(self):
        # Imported when a form is first checked, not with the module: every process imports the
        # admin at start-up (autodiscovery), and the API's serializers import DRF's, a costly import.
        from .serializers import PatientSerializer

        cleaned = super().clean()
        self.serializer = PatientSerializer(
            self.instance if self.instance.pk else None,
            data={name: value for name, value in cleaned.items() if name in self.Meta.fields},
            partial=bool(self.instance.pk),
        )
        if not self.serializer.is_valid():
            for name, errors in self.serializer.errors.items():
                # A list field's errors come keyed by item: {0: ["'fax' is not a valid choice."]}.
                messages = [m for item in errors.values() for m in item] if isinstance(errors, dict) else errors
                self.add_error(name if name in self.fields else None, messages)
        return cleaned


@admin.register(Patient)
class PatientAdmin(PatientDataPages, admin.ModelAdmin):
    form = PatientAdminForm
    trail_patient = "pk"
    list_display = ["name", "email", "phone", "timezone", "language", "channels", "opted_out"]
    list_filter = ["language"]
    search_fields = ["name", "email", "phone"]

    def save_model(self, request, obj, form, change):
        # Saved as the API saves it, so a sign-in account follows its patient's email.
        obj.pk = form.serializer.save().pk


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    search_fields = ["name"]


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ["name", "address"]
    search_fields = ["name", "address"]


class AppointmentAdminForm(forms.ModelForm):
    def clean(self):
        cleaned = super().clean()
        # A booking's time is checked as the API checks it; a change page cannot move one.
        if not self.instance.pk and cleaned.get("starts_at") and cleaned.get("patient"):
            check_horizon(cleaned["starts_at"], cleaned["patient"])
        return cleaned


@admin.register(Appointment)
class AppointmentAdmin(PatientDataPages, admin.ModelAdmin):
    form = AppointmentAdminForm
    list_display = ["patient", "provider", "starts_at", "status", "confirmed_at", "location"]
    list_filter = ["status", "provider"]
    search_fields = ["patient__name", "provider", "location"]
    date_hierarchy = "starts_at"
    raw_id_fields = ["patient"]
    # Time and status change through the reschedule and cancel endpoints, which notify the patient.
    readonly_fields = ["status", "cancel_reason", "confirmed_at"]

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


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    """The clinic's one record: added once, then edited, never deleted (emails name it)."""

    list_display = ["name", "phone", "updated_at"]
    fields = ["name", "phone", "address", "logo_url", "website"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # a logo in an email is https

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not Clinic.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
