from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self):
        from .operations import checks  # noqa: F401  (registers the system checks)
        from .outbox import receivers  # noqa: F401  (connects the appointment events' receivers)
