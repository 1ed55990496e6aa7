"""The engine the clinic's own templates compile in: a sandbox with only what a message needs.

Staff write these templates, and they are rendered in every worker for every patient, so they
get Django's template language without the parts that reach outside a message: no
`{% include %}`, `{% extends %}` or `{% debug %}`, no `{% url %}` or `{% csrf_token %}`, no
`{% autoescape off %}` or `|safe` (an HTML part keeps escaping the patient's own name), and
`{% load %}` of i18n alone. Built as a dedicated django.template.Engine whose only builtins are
the allowed tags and filters, so what is not listed does not exist for the parser. Debug is on
so that an error carries the line it is on."""

from dataclasses import dataclass

from django.template import Engine, Library, defaultfilters, defaulttags

ALLOWED_TAGS = (
    "comment",
    "cycle",
    "filter",
    "firstof",
    "for",
    "if",
    "ifchanged",
    "load",
    "now",
    "resetcycle",
    "spaceless",
    "templatetag",
    "verbatim",
    "widthratio",
    "with",
)
# Every filter of Django's but those that turn escaping off or print Python's internals.
REFUSED_FILTERS = ("safe", "safeseq", "pprint", "json_script", "random")
ALLOWED_FILTERS = tuple(sorted(set(defaultfilters.register.filters) - set(REFUSED_FILTERS)))
# The libraries `{% load %}` may name: translation (trans, blocktranslate, …).
LIBRARIES = {"i18n": "django.templatetags.i18n"}

MESSAGE_LIBRARY = Library()
MESSAGE_LIBRARY.tags.update({name: defaulttags.register.tags[name] for name in ALLOWED_TAGS})
MESSAGE_LIBRARY.filters.update({name: defaultfilters.register.filters[name] for name in ALLOWED_FILTERS})


class SandboxEngine(Engine):
    """An Engine whose builtins are MESSAGE_LIBRARY alone, instead of Django's defaults."""

    def get_template_builtins(self, builtins):
        return [MESSAGE_LIBRARY]


ENGINE = SandboxEngine(libraries=LIBRARIES, debug=True)


@dataclass(frozen=True)
class SandboxedTemplate:
    """A compiled part, shaped like the django backend's template (its `.template` is rendered
    with a Context), so stored and file templates render the same way."""

    template: object


def compile_sandboxed(source):
    """The source compiled in the sandbox (TemplateSyntaxError for a tag or filter it lacks)."""
    return SandboxedTemplate(ENGINE.from_string(source))
