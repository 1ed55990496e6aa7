from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Patients' data rights: the trail of who looked, the export, the erasure."""

    name = "privacy"

    def ready(self):
        from . import trail  # noqa: F401  (connects the receiver of appointments' patient_data_read)
