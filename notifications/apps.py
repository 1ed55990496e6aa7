from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self):
        from .inbound import email_receipts  # noqa: F401  (connects anymail's tracking signal)
        from .messages import catalog  # noqa: F401  (forgets the clinic's identity when staff edit it)
        from .operations import checks  # noqa: F401  (registers the system checks)
        from .outbox import receivers  # noqa: F401  (connects the appointment events' receivers)
