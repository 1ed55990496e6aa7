from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in: tokens that expire, throttled failures, tokens ended by a password change."""

    name = "accounts"

    def ready(self):
        from . import receivers  # noqa: F401  (connects the receivers)
