from django.contrib import admin

from .models import AccessLogEntry, Erasure


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never added, changed or deleted: a record of what happened."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "patient_id", "action", "path", "remote_address"]
    list_filter = ["action"]
    search_fields = ["=patient_id", "username"]
    date_hierarchy = "at"


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = ["patient_id", "at", "by", "reason"]
    search_fields = ["=patient_id"]
