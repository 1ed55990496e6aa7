from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations (webhooks to the clinic's systems)"

    def ready(self):
        from integrations import events  # noqa: F401 - connects the receivers of the domain signals
