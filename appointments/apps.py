from django.apps import AppConfig


class AppointmentsConfig(AppConfig):
    name = "appointments"

    def ready(self):
        from config.text_fields import refuse_numbers_as_text

        refuse_numbers_as_text()
