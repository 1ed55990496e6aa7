"""The clinic's templates, compiled, in memory: rendering is on every send's path and must not
query the database per message.

Each process keeps every stored template compiled by (channel, kind, language). The process
that saves one drops them (forget()) and reloads them on next use; the others notice an edit on
their next refresh(), which the delivery loop calls once per batch and which asks the database (one
small query: the count and the latest edit time) at most once every
NOTIFICATIONS_TEMPLATE_REFRESH_SECONDS."""

import logging
import threading
import time

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.template import TemplateSyntaxError

from notifications.messages.sandbox import compile_sandboxed

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_compiled = None  # {(channel, kind, language): {part: Template}}; None until first loaded
_version = None
_checked_at = float("-inf")
_clinic = None  # the clinic's identity (appointments' Clinic) as a dict; None until loaded


def compile_part(source):
    """A part's source as a template of the sandbox (notifications/messages/sandbox.py);
    TemplateSyntaxError when it does not compile there."""
    return compile_sandboxed(source)


def stored_templates(channel, kind, language):
    """The compiled parts of the clinic's template for this channel, kind and language, {} if
    there is none. Loads the templates on first use only: refresh() keeps them current."""
    if _compiled is None:
        refresh(force=True)
    return _compiled.get((channel, kind, language), {})


def refresh(force=False):
    """Reload the templates if they changed since the last look, looking at most every
    NOTIFICATIONS_TEMPLATE_REFRESH_SECONDS unless forced."""
    global _compiled, _version, _checked_at, _clinic
    from notifications.messages.models import MessageTemplate

    recently = time.monotonic() - _checked_at < settings.NOTIFICATIONS_TEMPLATE_REFRESH_SECONDS
    if _compiled is not None and recently and not force:
        return
    with _lock:
        stamp = MessageTemplate.objects.aggregate(count=Count("id"), latest=Max("updated_at"))
        version = (stamp["count"], stamp["latest"])
        if _compiled is None or version != _version:
            _compiled = {_key(row): _compile(row) for row in MessageTemplate.objects.all()}
            _version = version
        _clinic = _load_clinic()
        _checked_at = time.monotonic()


def clinic_identity():
    """The clinic's name, phone, address and logo as staff keep them in the admin, read with the
    templates (at most every NOTIFICATIONS_TEMPLATE_REFRESH_SECONDS), not per message."""
    if _clinic is None:
        refresh(force=True)
    return _clinic


def _load_clinic():
    from appointments.models import Clinic

    clinic = Clinic.current()
    return {
        "clinic_name": clinic.name,
        "clinic_phone": clinic.phone,
        "clinic_address": clinic.address,
        "clinic_logo_url": clinic.logo_url,
        "clinic_website": clinic.website,
    }


def _key(row):
    return (row.channel, row.kind, row.language)


def _compile(row):
    compiled = {}
    for part, source in row.parts().items():
        if not source.strip():
            continue
        try:
            compiled[part] = compile_part(source)
        except TemplateSyntaxError:
            # Saving refuses such a template; one written around the checks must not stop
            # every send: that part keeps the file's wording.
            logger.exception("stored template %s: %s does not compile, the file template is used", row.pk, part)
    return compiled


def forget():
    """After this process changed a template: its next use reloads them all. Called at once
    (later reads in the same transaction see the change) and again on commit (a reload by
    another thread in between saw the old rows)."""
    global _compiled, _clinic
    _compiled = None
    _clinic = None


@receiver(post_save, sender="appointments.Clinic", dispatch_uid="notifications.messages.catalog.clinic")
def _clinic_changed(**kwargs):
    # As a template's save: at once, and again on commit (a reload in between saw the old row).
    forget()
    transaction.on_commit(forget)
