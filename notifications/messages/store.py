"""Saving, deleting and restoring the clinic's templates: each change is checked, kept in the
history with who made it and the parts before and after, and reloaded by this process's
catalog on its next use (other processes notice it on their next refresh)."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.messages import catalog
from notifications.messages.checks import check_template
from notifications.messages.models import PARTS, MessageTemplate, MessageTemplateRevision, RevisionAction

KEY = ("channel", "kind", "language")


@transaction.atomic
def save_template(template, fields, editor):
    """Create (template None) or change a template from `fields` (channel, kind, language and
    any parts); refused with a ValidationError naming the fields at fault."""
    if template is not None and template.pk:
        # Read again under a lock: two staff saving at once each keep the other's edit as "before".
        template = MessageTemplate.objects.select_for_update().get(pk=template.pk)
    template = template or MessageTemplate()
    before = template.parts() if template.pk else None
    if template.pk:
        # The history is kept by channel, kind and language: a template keeps its own.
        moved = [name for name in KEY if name in fields and fields[name] != getattr(template, name)]
        if moved:
            raise ValidationError({name: ["Cannot be changed; create a template for it instead."] for name in moved})
    for name, value in fields.items():
        setattr(template, name, value)
    check_template(template.channel, template.kind, template.language, template.parts())
    if MessageTemplate.objects.filter(**_key(template)).exclude(pk=template.pk).exists():
        raise _already_exists(template)
    action = RevisionAction.CHANGED if before is not None else RevisionAction.CREATED
    return _write(template, before, editor, action)


@transaction.atomic
def delete_template(template, editor):
    _record(template, template.parts(), None, editor, RevisionAction.DELETED)
    template.delete()
    _forget()


@transaction.atomic
def restore_revision(revision, editor):
    """Put a template back as it was right after this revision (re-created if it has since
    been deleted). A deletion has nothing to restore: restore the revision before it."""
    if revision.after is None:
        raise ValidationError({"revision": ["A deletion has no wording to restore; restore an earlier revision."]})
    key = {name: getattr(revision, name) for name in KEY}
    template = MessageTemplate.objects.select_for_update().filter(**key).first() or MessageTemplate(**key)
    before = template.parts() if template.pk else None
    for part in PARTS:
        setattr(template, part, revision.after.get(part, ""))
    # Rules may have tightened since (fewer SMS segments allowed): a restore is checked too.
    check_template(template.channel, template.kind, template.language, template.parts())
    return _write(template, before, editor, RevisionAction.RESTORED, restored_from=revision)


def _write(template, before, editor, action, restored_from=None):
    template.updated_at = timezone.now()
    template.updated_by = editor
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        # Another request created the same template since the check above.
        raise _already_exists(template) from None
    _record(template, before, template.parts(), editor, action, restored_from)
    _forget()
    return template


def _forget():
    catalog.forget()
    transaction.on_commit(catalog.forget)


def _already_exists(template):
    message = f"A {template.channel} {template.kind} template in {template.language!r} already exists."
    return ValidationError({"language": [message]})


def _record(template, before, after, editor, action, restored_from=None):
    MessageTemplateRevision.objects.create(
        **_key(template),
        action=action,
        editor=editor,
        editor_name=getattr(editor, "username", ""),
        edited_at=timezone.now(),
        before=before,
        after=after,
        restored_from=restored_from,
    )


def _key(template):
    return {name: getattr(template, name) for name in KEY}


def history(channel, kind, language):
    return MessageTemplateRevision.objects.filter(channel=channel, kind=kind, language=language).select_related(
        "editor"
    )
