"""The peer's Django project: django-post-office and nothing else, on PostgreSQL, sending over
SMTP to the benchmark's sink. Copied to a temporary directory and run by the peer's virtualenv;
every value comes from the environment the benchmark sets."""

import os

SECRET_KEY = "bench-peer"
USE_TZ = True
INSTALLED_APPS = ["post_office"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["PEER_DB_NAME"],
        "USER": os.environ["PEER_DB_USER"],
        "HOST": os.environ["PEER_DB_HOST"],
        "PORT": os.environ["PEER_DB_PORT"],
    }
}
# Our templates directory, so the peer's EmailTemplate can extend email/base.html as ours does.
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [os.environ["PEER_TEMPLATES_DIR"]]}]
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["PEER_SMTP_PORT"])
DEFAULT_FROM_EMAIL = "Clinic <appointments@clinic.example>"
# post-office's defaults (batches of 100, 5 threads a process, a log row per email sent), with
# Django's SMTP backend.
POST_OFFICE = {"BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
