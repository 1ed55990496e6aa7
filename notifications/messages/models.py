"""The clinic's own message templates, edited by staff, and the history of their edits.
Saved, changed, deleted and restored only through notifications/messages/store.py, which
checks them and writes the history in the same transaction."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from notifications.channels.choices import Channel
from notifications.messages.kinds import NotificationKind

PARTS = ("subject", "text", "html")


class MessageTemplate(models.Model):
    """A channel's wording of one kind of message in one language. A blank part keeps the file
    template's wording for that part (e.g. an email whose subject alone the clinic changed)."""

    channel = models.CharField(max_length=16, choices=Channel.choices)
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    language = models.CharField(max_length=16)
    subject = models.TextField(blank=True, help_text="Email only.")
    text = models.TextField(blank=True)
    html = models.TextField(blank=True, help_text="Email only.")
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["channel", "kind", "language"]
        # Not plain edits: previewing renders a patient's data; restoring rewrites the live wording.
        permissions = [
            ("preview_messagetemplate", "Can preview a message template"),
            ("restore_messagetemplate", "Can restore a message template from its history"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["channel", "kind", "language"], name="message_template_once_per_language")
        ]

    def __str__(self):
        return f"{self.get_kind_display()} by {self.get_channel_display()} ({self.language})"

    def parts(self):
        return {part: getattr(self, part) for part in PARTS}


class RevisionAction(models.TextChoices):
    CREATED = "created"
    CHANGED = "changed"
    DELETED = "deleted"
    RESTORED = "restored"


class MessageTemplateRevision(models.Model):
    """One edit of a template: who, when, and its parts before and after (null before a
    creation, after a deletion). Keyed by channel, kind and language rather than by the
    template, so the history outlives a deleted template and can bring it back."""

    channel = models.CharField(max_length=16, choices=Channel.choices)
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    language = models.CharField(max_length=16)
    action = models.CharField(max_length=16, choices=RevisionAction.choices)
    editor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The editor's username as it was, kept should the account be deleted.
    editor_name = models.CharField(max_length=150, blank=True)
    edited_at = models.DateTimeField(default=timezone.now)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    restored_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-edited_at", "-id"]
        indexes = [models.Index(fields=["channel", "kind", "language", "-edited_at"], name="template_revision_history")]

    def __str__(self):
        return f"{self.action} {self.channel}/{self.kind}/{self.language} by {self.editor_name or '?'}"
