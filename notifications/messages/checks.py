"""What a template must pass before it is saved: it compiles in the sandbox
(notifications/messages/sandbox.py), it names only variables a message has, it belongs to its
channel's parts, every part renders with the sample appointment (and the one previewed) in every
language the clinic has, into nothing a channel cannot carry, and an SMS fits
NOTIFICATIONS_SMS_MAX_SEGMENTS (measured with the sample appointment, in the template's language)."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Node, TemplateSyntaxError, Variable
from django.template.base import FilterExpression, TokenType
from django.template.smartif import Literal, TokenBase
from django.templatetags.i18n import BlockTranslateNode
from django.utils import translation

from notifications.channels.choices import Channel
from notifications.messages.catalog import compile_part
from notifications.messages.models import PARTS
from notifications.messages.preview import preview_snapshot, render_preview, sample_snapshot
from notifications.messages.rendering import message_context
from notifications.messages.sandbox import ALLOWED_TAGS, REFUSED_FILTERS

EMAIL_ONLY_PARTS = ("subject", "html")
# Names a template may bind itself: {% for x in … %}, {% with x=… %}, {% … as x %}.
BINDING_ATTRIBUTES = ("loopvars", "asvar", "varname", "variable_name", "var_name", "target")
# What no channel carries: C0 and C1 control characters and DEL, but tab and line ends (a form's
# text area sends CRLF).
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def message_variables():
    return set(message_context(sample_snapshot(settings.LANGUAGE_CODE)))


def check_template(channel, kind, language, parts, *, saving=True, appointment=None):
    """The compiled parts of a template the clinic wants to save (or preview, with this
    appointment), or a ValidationError naming each field at fault. Saving, a template must have a
    part, and an SMS must fit in NOTIFICATIONS_SMS_MAX_SEGMENTS; a preview shows the files'
    wording for blank parts, and the segments however many they are."""
    errors = {}
    codes = [code for code, _ in settings.LANGUAGES]
    if language not in codes:
        errors["language"] = [f"{language!r} is not one of {', '.join(codes)}."]
    if channel != Channel.EMAIL:
        for part in EMAIL_ONLY_PARTS:
            if parts.get(part, "").strip():
                errors[part] = [f"Only email templates have a {part} part; leave it empty for {channel}."]
        if saving and not parts.get("text", "").strip():
            errors["text"] = ["This field may not be blank."]
    elif saving and not any(parts.get(part, "").strip() for part in PARTS):
        errors["text"] = ["An email template needs at least one of subject, text and html."]
    compiled = {}
    known = message_variables()
    for part in PARTS:
        source = parts.get(part, "")
        if part in errors or not source.strip():
            continue
        control = CONTROL_CHARACTER.search(source)
        if control:
            line = source.count("\n", 0, control.start()) + 1
            errors[part] = [
                f"Has the control character U+{ord(control.group()):04X} on line {line}; no channel carries it."
            ]
            continue
        try:
            compiled[part] = compile_part(source)
        except TemplateSyntaxError as exc:
            errors[part] = [f"Does not compile{on_line(exc)}: {exc}{sandbox_hint(exc)}"]
            continue
        unknown = sorted(variables_used(compiled[part]) - known)
        if unknown:
            names = ", ".join(f"{{{{ {name} }}}}" for name in unknown)
            errors[part] = [f"Unknown variable {names}; a message has {', '.join(sorted(known))}."]
    if not errors:
        errors.update(render_errors(compiled, appointment))
    if not errors and saving and channel == Channel.SMS:
        errors.update(_segment_errors(kind, language, compiled))
    if errors:
        raise ValidationError(errors)
    return compiled


def render_errors(compiled, appointment=None):
    """{part: [message]} for each part that fails to render, or renders a control character, with
    the sample appointment (and the given one) in any of the clinic's languages."""
    errors = {}
    for language, _ in settings.LANGUAGES:
        for snapshot in [preview_snapshot(language)] + (
            [preview_snapshot(language, appointment)] if appointment else []
        ):
            context = message_context(snapshot, language)
            with translation.override(language):
                for part, template in compiled.items():
                    if part not in errors:
                        problem = _render_problem(template, part, context)
                        if problem:
                            errors[part] = [f"Cannot be sent in {language!r}: {problem}"]
    return errors


def _render_problem(template, part, context):
    try:
        output = template.template.render(Context(context, autoescape=part == "html"))
    except Exception as exc:  # noqa: BLE001 - whatever a template does wrong is its editor's to fix, never a 500
        return f"it does not render{on_line(exc)} ({exc.__class__.__name__}: {exc})."
    control = CONTROL_CHARACTER.search(output)
    if control:
        return f"it puts out the control character U+{ord(control.group()):04X}, which no channel carries."
    return ""


def sandbox_hint(exc):
    """What the sandbox offers, when the error is a tag, filter or library it lacks."""
    if not any(words in str(exc) for words in ("Invalid block tag", "Invalid filter", "not a registered tag library")):
        return ""
    return (
        f" (a message template has only the tags {', '.join(ALLOWED_TAGS)}, translation's after {{% load i18n %}}, "
        f"and Django's filters but {', '.join(REFUSED_FILTERS)})"
    )


def on_line(exc):
    """' on line N' where Django's template debug information names it, else ''."""
    debug = getattr(exc, "template_debug", None)
    return f" on line {debug['line']}" if debug and "line" not in str(exc) else ""


def _segment_errors(kind, language, compiled):
    preview = render_preview(Channel.SMS, kind, language, compiled)
    if preview["segments"] <= settings.NOTIFICATIONS_SMS_MAX_SEGMENTS:
        return {}
    return {
        "text": [
            f"Needs {preview['segments']} SMS segments ({preview['characters']} characters, {preview['encoding']}, "
            f"with the sample appointment); at most {settings.NOTIFICATIONS_SMS_MAX_SEGMENTS} are allowed "
            "(NOTIFICATIONS_SMS_MAX_SEGMENTS)."
        ]
    }


def variables_used(template):
    """The context names a compiled template (the backend's) reads, less those it binds itself."""
    used, bound = set(), {"forloop", "block"}
    for node in template.template.nodelist.get_nodes_by_type(Node):
        for name in BINDING_ATTRIBUTES:
            value = getattr(node, name, None)
            if isinstance(value, str):
                bound.add(value)
            elif isinstance(value, list | tuple):
                bound.update(item for item in value if isinstance(item, str))
        extra = getattr(node, "extra_context", None)
        if isinstance(extra, dict):
            bound.update(extra)
        if isinstance(node, BlockTranslateNode):
            for token in [*node.singular, *(node.plural or [])]:
                if token.token_type == TokenType.VAR:
                    used.add(token.contents.split(".")[0])
            if node.countervar:
                bound.add(node.countervar)
        for value in vars(node).values():
            used.update(_names(value))
    return used - bound


def _names(value):
    """The first names of the variables in a tag's or variable node's arguments."""
    if isinstance(value, FilterExpression):
        yield from _names(value.var)
        for _, arguments in value.filters:
            for _, argument in arguments:
                yield from _names(argument)
    elif isinstance(value, Variable):
        if value.lookups:
            yield value.lookups[0]
    elif isinstance(value, Literal):
        yield from _names(value.value)
    elif isinstance(value, TokenBase):
        yield from _names(getattr(value, "first", None))
        yield from _names(getattr(value, "second", None))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _names(item)
    elif isinstance(value, list | tuple) and not isinstance(value, Node):
        for item in value:
            if not isinstance(item, Node):
                yield from _names(item)
