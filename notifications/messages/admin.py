"""The admin's template pages: edit with a live preview (POST /api/templates/preview/ as the
staff user's session), characters and segments for SMS and WhatsApp, and the edit history
with a Restore button per revision. Saving, deleting and restoring go through template_store."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from notifications.messages.checks import check_template
from notifications.messages.models import PARTS, MessageTemplate, MessageTemplateRevision
from notifications.messages.store import KEY, delete_template, history, restore_revision, save_template


class MessageTemplateForm(forms.ModelForm):
    language = forms.ChoiceField(choices=lambda: settings.LANGUAGES, initial=lambda: settings.LANGUAGE_CODE)

    class Meta:
        model = MessageTemplate
        fields = [*KEY, *PARTS]
        widgets = {part: forms.Textarea(attrs={"rows": 6, "cols": 90, "class": "vLargeTextField"}) for part in PARTS}

    def clean(self):
        cleaned = super().clean()
        # On a change page the key is read-only: the template's own.
        key = [cleaned.get(name, getattr(self.instance, name)) for name in KEY]
        if all(key):
            try:
                check_template(*key, {part: cleaned.get(part, "") for part in PARTS})
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
        return cleaned


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    form = MessageTemplateForm
    change_form_template = "admin/notifications/messagetemplate/change_form.html"
    list_display = ["channel", "kind", "language", "updated_at", "updated_by"]
    list_filter = ["channel", "kind", "language"]
    readonly_fields = ["edit_history"]

    def get_fields(self, request, obj=None):
        return [*KEY, *PARTS, *(["edit_history"] if obj else [])]

    def get_readonly_fields(self, request, obj=None):
        # A template keeps its channel, kind and language: its history is kept under them.
        return [*KEY, "edit_history"] if obj else []

    def save_model(self, request, obj, form, change):
        original = MessageTemplate.objects.get(pk=obj.pk) if change else None
        fields = {name: form.cleaned_data[name] for name in form.cleaned_data if name in (*KEY, *PARTS)}
        obj.pk = save_template(original, fields, request.user).pk

    def delete_model(self, request, obj):
        delete_template(obj, request.user)

    def delete_queryset(self, request, queryset):
        for template in queryset:
            delete_template(template, request.user)

    @admin.display(description="Edit history")
    def edit_history(self, template):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td><td><pre>{}</pre></td><td>{}</td></tr>",
            (
                (
                    revision.edited_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
                    revision.editor_name or "?",
                    revision.get_action_display(),
                    _parts_text(revision.before),
                    _parts_text(revision.after),
                    _restore_button(template, revision),
                )
                for revision in history(template.channel, template.kind, template.language)
            ),
        )
        return format_html(
            '<table class="template-history"><thead><tr><th>When</th><th>Who</th><th>What</th><th>Before</th>'
            "<th>After</th><th></th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    def get_urls(self):
        restore = self.admin_site.admin_view(self.restore_view)
        return [
            path("<int:pk>/restore/<int:revision>/", restore, name="notifications_messagetemplate_restore"),
            *super().get_urls(),
        ]

    def restore_view(self, request, pk, revision):
        get_object_or_404(MessageTemplate, pk=pk)
        if request.method != "POST" or not request.user.has_perm("notifications.restore_messagetemplate"):
            return redirect(reverse("admin:notifications_messagetemplate_change", args=[pk]))
        try:
            restore_revision(get_object_or_404(MessageTemplateRevision, pk=revision), request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, "Revision restored.", messages.SUCCESS)
        return redirect(reverse("admin:notifications_messagetemplate_change", args=[pk]))


def _parts_text(parts):
    if parts is None:
        return "—"
    return "\n".join(f"{part}: {value}" for part, value in parts.items() if value)


def _restore_button(template, revision):
    if revision.after is None:
        return ""
    url = reverse("admin:notifications_messagetemplate_restore", args=[template.pk, revision.pk])
    # Posts the page's own form (and its CSRF token) to the restore view.
    return format_html('<button type="submit" formaction="{}" formnovalidate>Restore</button>', url)


@admin.register(MessageTemplateRevision)
class MessageTemplateRevisionAdmin(admin.ModelAdmin):
    """Every edit, a deleted template's included; restoring one brings its wording back."""

    list_display = ["edited_at", "channel", "kind", "language", "action", "editor_name"]
    list_filter = ["channel", "kind", "language", "action"]
    actions = ["restore_selected"]
    readonly_fields = [
        "channel",
        "kind",
        "language",
        "action",
        "editor_name",
        "edited_at",
        "before",
        "after",
        "restored_from",
    ]
    exclude = ["editor"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_restore_permission(self, request):
        # The API's restore checks the same permission (notifications/messages/api.py).
        return request.user.has_perm("notifications.restore_messagetemplate")

    @admin.action(description="Restore the selected revision", permissions=["restore"])
    def restore_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one revision to restore.", messages.ERROR)
            return
        try:
            restore_revision(queryset.get(), request.user)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(request, "Revision restored.", messages.SUCCESS)

    def has_change_permission(self, request, obj=None):
        # Nothing on a revision is editable.
        return False
