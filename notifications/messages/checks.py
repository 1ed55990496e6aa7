"""What a template must pass before it is saved: it compiles, it names only variables a
message has, it belongs to its channel's parts, and an SMS fits NOTIFICATIONS_SMS_MAX_SEGMENTS
(measured with the sample appointment, in the template's language)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Node, TemplateSyntaxError, Variable
from django.template.base import FilterExpression, TokenType
from django.template.smartif import Literal, TokenBase
from django.templatetags.i18n import BlockTranslateNode

from notifications.channels.choices import Channel
from notifications.messages.catalog import compile_part
from notifications.messages.models import PARTS
from notifications.messages.preview import render_preview, sample_snapshot
from notifications.messages.rendering import message_context

EMAIL_ONLY_PARTS = ("subject", "html")
# Names a template may bind itself: {% for x in … %}, {% with x=… %}, {% … as x %}.
BINDING_ATTRIBUTES = ("loopvars", "asvar", "varname", "variable_name", "var_name", "target")


def message_variables():
    return set(message_context(sample_snapshot(settings.LANGUAGE_CODE)))


def check_template(channel, kind, language, parts, *, saving=True):
    """The compiled parts of a template the clinic wants to save (or preview), or a
    ValidationError naming each field at fault. Saving, a template must have a part, and an
    SMS must fit in NOTIFICATIONS_SMS_MAX_SEGMENTS; a preview shows the files' wording for
    blank parts, and the segments however many they are."""
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
        try:
            compiled[part] = compile_part(source)
        except TemplateSyntaxError as exc:
            errors[part] = [f"Does not compile: {exc}"]
            continue
        unknown = sorted(variables_used(compiled[part]) - known)
        if unknown:
            names = ", ".join(f"{{{{ {name} }}}}" for name in unknown)
            errors[part] = [f"Unknown variable {names}; a message has {', '.join(sorted(known))}."]
    if not errors and saving and channel == Channel.SMS:
        errors.update(_segment_errors(kind, language, compiled))
    if errors:
        raise ValidationError(errors)
    return compiled


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
