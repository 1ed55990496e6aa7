from django.core import checks
from django.template import TemplateDoesNotExist
from django.template.loader import select_template


@checks.register(checks.Tags.templates)
def notification_templates_exist(app_configs, **kwargs):
    """A missing template is found at start-up, not by the first patient who needs it."""
    from .rendering import all_template_names, candidates

    errors = []
    for name in all_template_names():
        try:
            select_template(candidates(name))
        except TemplateDoesNotExist:
            errors.append(
                checks.Error(
                    f"Notification template {name!r} is missing",
                    hint=f"Add templates/{name} or templates/notifications/{name}.",
                    id="notifications.E001",
                )
            )
    return errors
