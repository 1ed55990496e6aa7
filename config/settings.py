"""Settings, read from the environment (12-factor). Every variable is optional: the defaults
are the embedded ones (SQLite under var/, Redis on loopback, console email and SMS)."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.conf.locale import LANG_INFO
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_float, env_int, env_list, env_pairs, env_str, env_time_window

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

# DJANGO_ENV=production turns the embedded defaults into refusals: no debug, a real secret
# key, named hosts, secure cookies behind a TLS-terminating proxy, JSON logs.
PRODUCTION = env_str("DJANGO_ENV", "development") == "production"
DEBUG = env_bool("DJANGO_DEBUG", not PRODUCTION)
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or ("" if PRODUCTION else "insecure-development-key")
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DJANGO_DEBUG must be off when DJANGO_ENV=production")
    if not SECRET_KEY:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_ENV=production")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name this service's hosts when DJANGO_ENV=production")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    # Browsers keep to https for a year once they have seen the service over it.
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 365 * 24 * 60 * 60)
    # The proxy terminates TLS and says so; Django then rebuilds public URLs (the webhook's
    # signed URL among them) with https and the public host.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
    CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "accounts",
    "appointments",
    "notifications",
    "privacy",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: DATABASE_URL, else a SQLite file under var/.
DATABASES = {
    "default": dj_database_url.parse(env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}", conn_max_age=60)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # Web, worker, beat and commands write concurrently: WAL lets readers run beside the
        # writer, IMMEDIATE takes the write lock up front instead of failing on upgrade.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory: worker processes started by the tests must see the same database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that does not answer fails fast (health checks, bookings) instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 3
    # A reused connection is checked before its first query, so one broken by a database
    # restart is replaced instead of failing a task.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = ["config.auth.CaseInsensitiveUsernameBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Messages go out in the patient's language, one of LANGUAGES (LANGUAGE_CODE is the default,
# and the fallback for any text a language has no translation of). A clinic adds a language by
# adding its translations under locale/ (README, "Languages") and naming it here.
LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
LANGUAGES = [(code, LANG_INFO.get(code, {}).get("name_local", code)) for code in env_list("LANGUAGES", ["en", "es"])]
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(f"LANGUAGE_CODE {LANGUAGE_CODE!r} must be one of LANGUAGES")
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured(f"TRUSTED_PROXY_COUNT must be 0 or more, not {TRUSTED_PROXY_COUNT}")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # `Authorization: Token <key>`, as before, with keys that expire (REST_KNOX below).
        "accounts.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Staff by Django's model permissions, as in the admin; patients as each view allows (config/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": ["config.permissions.ModelPermissions"],
    # JSON only, as the schema says: a form body answers 415 rather than being read another way.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    # Documents every error status an operation can answer (config/schema.py).
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # How many proxies in front append to X-Forwarded-For: the throttles' client address is the
    # entry the outermost trusted one appended, and with none (0) the socket's; a header the
    # client wrote itself is never believed.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    # Failed sign-ins (accounts/throttles.py); a success does not count.
    "DEFAULT_THROTTLE_RATES": {
        "sign_in_account": env_str("SIGN_IN_FAILURES_PER_ACCOUNT", "10/hour"),
        "sign_in_address": env_str("SIGN_IN_FAILURES_PER_ADDRESS", "30/hour"),
    },
}
# API tokens live AUTH_TOKEN_TTL_SECONDS (10 hours) and end sooner when the password changes.
REST_KNOX = {
    "TOKEN_TTL": timedelta(seconds=env_int("AUTH_TOKEN_TTL_SECONDS", 10 * 60 * 60)),
    "AUTH_HEADER_PREFIX": "Token",
}
# The cache holds the sign-in throttles' counts, in the database so every web process shares them
# and a broker outage does not stop sign-ins (the table is made by migration accounts.0001).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "django_cache"}}
SPECTACULAR_SETTINGS = {
    "TITLE": "Appointment notifications API",
    "VERSION": "1.0.0",
    # Swagger UI from drf-spectacular-sidecar's copy, served by the service: /api/docs/ needs no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Request bodies get components of their own (AppointmentRequest…): generated clients then
    # ask only for the fields a client sends.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.add_links"],
}

# Email: Django's own settings. EMAIL_BACKEND takes a dotted path or one of the short names;
# smtp is Django's SMTP backend writing the notifications' emails itself (notifications/channels/email.py).
_EMAIL_BACKENDS = {
    "console": "notifications.channels.email.ConsoleEmailBackend",
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "smtp": "notifications.channels.email.SMTPBackend",
}
EMAIL_BACKEND = _EMAIL_BACKENDS.get(env_str("EMAIL_BACKEND", "console"), env_str("EMAIL_BACKEND"))
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)  # an SMTP server that hangs must not pin a worker
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Clinic <appointments@clinic.example>")

# SMS and WhatsApp. SMS_BACKEND: twilio, console or locmem.
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
TWILIO_PHONE_NUMBER = env_str("TWILIO_PHONE_NUMBER")
TWILIO_WHATSAPP_NUMBER = env_str("TWILIO_WHATSAPP_NUMBER")
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL")
TWILIO_STATUS_CALLBACK_URL = env_str("TWILIO_STATUS_CALLBACK_URL")
# The public URL of the inbound webhook as entered at Twilio (the URL it signs); else the
# request's own URL as the proxy settings let Django rebuild it.
TWILIO_INBOUND_URL = env_str("TWILIO_INBOUND_URL")
# Approved WhatsApp Content Templates by kind ("reminder=HX…,booking_confirmation=HX…"): Twilio
# delivers a business-initiated WhatsApp message only from an approved template.
TWILIO_CONTENT_SIDS = env_pairs("TWILIO_CONTENT_SIDS")
TWILIO_HTTP_TIMEOUT = env_float("TWILIO_HTTP_TIMEOUT", 10.0)
# Sends per second across all workers (a token bucket in Redis); 0 means no limit. A send that
# finds no token within RATE_LIMIT_MAX_WAIT seconds waits in the queue for the next sweep.
TWILIO_MAX_SENDS_PER_SECOND = env_float("TWILIO_MAX_SENDS_PER_SECOND", 0)
EMAIL_MAX_SENDS_PER_SECOND = env_float("EMAIL_MAX_SENDS_PER_SECOND", 0)
RATE_LIMIT_MAX_WAIT = env_float("RATE_LIMIT_MAX_WAIT", 1.0)
SMS_BACKEND = env_str("SMS_BACKEND") or ("twilio" if TWILIO_ACCOUNT_SID else "console")
if SMS_BACKEND not in ("twilio", "console", "locmem"):
    raise ImproperlyConfigured(f"SMS_BACKEND must be twilio, console or locmem, not {SMS_BACKEND!r}")
# The country calling codes text may go to ("1,44"); empty: the sender's own, or any without a
# sender (config/phone_numbers.py).
SMS_ALLOWED_COUNTRIES = [code.removeprefix("+") for code in env_list("SMS_ALLOWED_COUNTRIES")]
if not all(code.isascii() and code.isdigit() and len(code) <= 3 for code in SMS_ALLOWED_COUNTRIES):
    raise ImproperlyConfigured(f"SMS_ALLOWED_COUNTRIES must be calling codes such as 1,44, not {SMS_ALLOWED_COUNTRIES}")

if PRODUCTION:
    # Production never pretends to send: a console or in-memory backend would mark every message
    # sent (and print the full address to stdout) while no patient hears of their appointment.
    _PRETENDING = (
        _EMAIL_BACKENDS["console"],
        _EMAIL_BACKENDS["locmem"],
        "django.core.mail.backends.console.EmailBackend",
    )
    if EMAIL_BACKEND in _PRETENDING:
        raise ImproperlyConfigured(
            f"EMAIL_BACKEND must send real email when DJANGO_ENV=production (e.g. smtp), not {EMAIL_BACKEND!r}"
        )
    if SMS_BACKEND != "twilio":
        raise ImproperlyConfigured(
            f"SMS_BACKEND must be twilio, with TWILIO_ACCOUNT_SID set, when DJANGO_ENV=production, not {SMS_BACKEND!r}"
        )
    # Every secret in .env.example is a change-me placeholder; one left in place is no secret.
    for _name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "TWILIO_AUTH_TOKEN", "EMAIL_HOST_PASSWORD", "FLOWER_BASIC_AUTH"):
        if "change-me" in env_str(_name):
            raise ImproperlyConfigured(f"{_name} still holds the change-me placeholder of .env.example")

CLINIC_NAME = env_str("CLINIC_NAME", "The Clinic")
# The latest a booking or a move may be, in days from today in the patient's zone (appointments/horizon.py).
BOOKING_MAX_DAYS_AHEAD = env_int("BOOKING_MAX_DAYS_AHEAD", 730)

# The notification pipeline.
NOTIFICATIONS_SWEEP_INTERVAL = env_float("NOTIFICATIONS_SWEEP_INTERVAL", 60.0)
NOTIFICATIONS_SWEEP_BATCH_SIZE = env_int("NOTIFICATIONS_SWEEP_BATCH_SIZE", 50)
# Sends of one batch run side by side on this many threads: they wait on providers, not the CPU.
NOTIFICATIONS_SEND_THREADS = env_int("NOTIFICATIONS_SEND_THREADS", 8)
NOTIFICATIONS_MAX_ATTEMPTS = env_int("NOTIFICATIONS_MAX_ATTEMPTS", 5)
NOTIFICATIONS_BACKOFF_BASE = env_float("NOTIFICATIONS_BACKOFF_BASE", 30.0)
NOTIFICATIONS_BACKOFF_MAX = env_float("NOTIFICATIONS_BACKOFF_MAX", 3600.0)
# A send whose answer never came is tried again (after a look at Twilio) no sooner than this: a
# message Twilio takes late is listed by then, and found, instead of sent twice (scenario 5b).
NOTIFICATIONS_UNANSWERED_GRACE = env_float("NOTIFICATIONS_UNANSWERED_GRACE", 60.0)
NOTIFICATIONS_LEASE_SECONDS = env_int("NOTIFICATIONS_LEASE_SECONDS", 300)
NOTIFICATIONS_RETENTION_DAYS = env_int("NOTIFICATIONS_RETENTION_DAYS", 180)
# Minimum necessary (issue 25): email bodies name the appointment's reason only when this is on
# (subjects and text messages never do), and a sent message's rendered copy is purged after
# NOTIFICATIONS_CONTENT_RETENTION_DAYS, its row (the statistics) staying for the retention above.
NOTIFICATIONS_SHOW_REASON = env_bool("NOTIFICATIONS_SHOW_REASON", False)
NOTIFICATIONS_CONTENT_RETENTION_DAYS = env_int("NOTIFICATIONS_CONTENT_RETENTION_DAYS", 90)
# Seconds a POST to a clinic's webhook endpoint may take to connect, and to answer (integrations/).
WEBHOOKS_HTTP_TIMEOUT = env_float("WEBHOOKS_HTTP_TIMEOUT", 5.0)
# An SMS template that would take more segments than this (with the sample appointment) is
# refused when staff save it: each segment is billed.
NOTIFICATIONS_SMS_MAX_SEGMENTS = env_int("NOTIFICATIONS_SMS_MAX_SEGMENTS", 3)
# A reschedule notice waits this long for the next move, so quick moves reach the patient as one
# notice naming the latest time (notifications/outbox/planning.py); 0 sends it at once.
NOTIFICATIONS_RESCHEDULE_SETTLE_SECONDS = env_int("NOTIFICATIONS_RESCHEDULE_SETTLE_SECONDS", 60)
# How often a worker looks for templates staff edited in another process (one small query);
# the process that saved one uses it at once.
NOTIFICATIONS_TEMPLATE_REFRESH_SECONDS = env_float("NOTIFICATIONS_TEMPLATE_REFRESH_SECONDS", 5.0)
# A due row waiting longer than this means the backlog stalled (/healthz's `backlog`, /metrics):
# above the lease, as a row whose worker died waits for the lease and the reclaim before it is due.
NOTIFICATIONS_BACKLOG_STALLED_SECONDS = env_float(
    "NOTIFICATIONS_BACKLOG_STALLED_SECONDS", max(900.0, 2.0 * NOTIFICATIONS_LEASE_SECONDS)
)
# A bearer token that lets a Prometheus server read /metrics (staff signed in always may); none by default.
METRICS_TOKEN = env_str("METRICS_TOKEN")
# The daily failure digest goes to these addresses, or else to every active staff user with an email.
NOTIFICATIONS_DIGEST_RECIPIENTS = env_list("NOTIFICATIONS_DIGEST_RECIPIENTS")
# Appointments a patient may book for themselves in any hour (appointments/allowance.py).
BOOKINGS_PER_PATIENT_PER_HOUR = env_int("BOOKINGS_PER_PATIENT_PER_HOUR", 5)
# Reschedules and cancellations a patient may make themselves in any 24 hours (staff: no limit).
PATIENT_CHANGES_PER_DAY = env_int("PATIENT_CHANGES_PER_DAY", 5)
# How long an Idempotency-Key is remembered (appointments/idempotency.py); an older key counts as new.
IDEMPOTENCY_KEY_TTL_SECONDS = env_int("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 60 * 60)
# The seed's schedule (2 days by email, 1 day and 2 hours by SMS); each entry also reaches the
# channels the seed had planned (in-app beside email, WhatsApp beside SMS) for patients who chose them.
NOTIFICATIONS_REMINDER_SCHEDULE = [
    {"days_before": 2, "channels": ["email", "in_app"]},
    {"days_before": 1, "channels": ["sms", "whatsapp"]},
    {"hours_before": 2, "channels": ["sms", "whatsapp"]},
]

# Text message reminders falling in these hours of the patient's night wait for their end
# (NOTIFICATIONS_QUIET_HOURS="" turns them off); email and in-app are exempt by default.
_quiet_window = env_time_window("NOTIFICATIONS_QUIET_HOURS", "21:00-08:00")
NOTIFICATIONS_QUIET_HOURS = {
    channel: _quiet_window for channel in env_list("NOTIFICATIONS_QUIET_CHANNELS", ["sms", "whatsapp"]) if _quiet_window
}

# Celery. Redis is the broker; outcomes live in the notification rows, so no result backend.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# A booking must answer fast when Redis is down or hangs: connect and socket timeouts bound
# the on-commit publish, and publishing is not retried (the sweep sends what was not enqueued).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    # Redis redelivers unacknowledged tasks after this; well above any task's time limit.
    "visibility_timeout": 3600,
}
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task is acknowledged after it ran, and redelivered if its worker died: the row's claim
# makes a second delivery harmless.
# Reuse database connections across tasks (a PostgreSQL connect costs more than a send's
# queries); config/celery.py still drops broken and old ones, as Django does per request.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message at a time per worker process, so a slow provider does not strand prefetched sends.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Time limits stay below the lease, so a stuck send is killed before its row is reclaimed.
CELERY_TASK_SOFT_TIME_LIMIT = min(120, NOTIFICATIONS_LEASE_SECONDS // 2)
CELERY_TASK_TIME_LIMIT = min(150, NOTIFICATIONS_LEASE_SECONDS * 2 // 3)
# The sweep's soft limit is half the lease: it claims no more rows than its threads can send
# by then, each send as slow as its timeouts allow (sweeps.sweep), and is killed at two thirds.
CELERY_TASK_ANNOTATIONS = {
    "notifications.sweep_due": {
        "soft_time_limit": NOTIFICATIONS_LEASE_SECONDS // 2,
        "time_limit": NOTIFICATIONS_LEASE_SECONDS * 2 // 3,
    },
}
# Workers log through LOGGING above (JSON lines in production), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# What a task prints is ordinary output, not a warning (Celery's default level for it).
CELERY_WORKER_REDIRECT_STDOUTS_LEVEL = "INFO"
CELERY_BEAT_SCHEDULER = "config.beat:SeedingDatabaseScheduler"
# Events for the clinic's systems go on a queue of their own, served by workers of their own
# (compose's webhooks-worker, `make run`'s): a slow endpoint never delays a patient's message.
CELERY_TASK_ROUTES = {"integrations.*": {"queue": "webhooks"}}
# The task modules, and the modules a send imports on first use (the twilio client, icalendar):
# imported before the prefork pool forks, its processes share them rather than each importing them.
CELERY_IMPORTS = (
    "tasks.delivery",
    "tasks.maintenance",
    "tasks.retention",
    "tasks.digest",
    "tasks.idempotency",
    "tasks.accounts",
    "tasks.webhooks",
    "notifications.channels.twilio_backend",
    "icalendar",
)
# The beat schedule's first values: beat writes each entry into the database (django-celery-beat's
# tables, edited in the admin) only when it is not there yet, so an operator's change survives
# restarts (config/beat.py). Exactly one beat process may run.
CELERY_BEAT_SCHEDULE = {
    "sweep-due-notifications": {
        "task": "notifications.sweep_due",
        "schedule": NOTIFICATIONS_SWEEP_INTERVAL,
    },
    "reclaim-expired-leases": {
        "task": "notifications.reclaim_expired_leases",
        "schedule": max(10.0, NOTIFICATIONS_LEASE_SECONDS / 5),
    },
    "purge-old-notifications": {
        "task": "notifications.purge_old",
        "schedule": crontab(hour=3, minute=17),
    },
    "purge-expired-idempotency-keys": {
        "task": "appointments.purge_idempotency_keys",
        "schedule": crontab(hour=3, minute=47),
    },
    "purge-expired-tokens": {
        "task": "accounts.purge_expired_tokens",
        "schedule": crontab(hour=3, minute=57),
    },
    "sweep-webhooks": {
        "task": "integrations.sweep_webhooks",
        "schedule": NOTIFICATIONS_SWEEP_INTERVAL,
    },
    "reclaim-webhook-leases": {
        "task": "integrations.reclaim_webhook_leases",
        "schedule": max(10.0, NOTIFICATIONS_LEASE_SECONDS / 5),
    },
    "purge-old-webhook-deliveries": {
        "task": "integrations.purge_old_webhook_deliveries",
        "schedule": crontab(hour=3, minute=27),
    },
    "staff-failure-digest": {
        "task": "notifications.send_staff_digest",
        "schedule": crontab(hour=7, minute=0),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_phone_numbers": {"()": "config.logging.MaskPhoneNumbers"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env_str("LOG_FORMAT", "json" if PRODUCTION else "plain"),
            "filters": ["mask_phone_numbers"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # The twilio client logs every request's URL and headers at INFO; urllib3 logs URLs at DEBUG.
    "loggers": {"twilio.http_client": {"level": "WARNING"}, "urllib3": {"level": "INFO"}},
}

# Email through an email service (issue 29): EMAIL_BACKEND=anymail.backends.<esp>.EmailBackend,
# and every ANYMAIL_<NAME> environment variable becomes anymail's <NAME> setting (e.g.
# ANYMAIL_POSTMARK_SERVER_TOKEN, ANYMAIL_MAILGUN_API_KEY, ANYMAIL_WEBHOOK_SECRET=user:pass for the
# tracking webhooks' basic auth, ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY).
INSTALLED_APPS += ["anymail"]
ANYMAIL = {name.removeprefix("ANYMAIL_"): value for name, value in os.environ.items() if name.startswith("ANYMAIL_")}

# Links a patient acts on (/a/{token}/): the service's public base URL, without a trailing slash
# (emails are read elsewhere, so their links are absolute), and whether text messages carry one.
SITE_URL = env_str("SITE_URL", "http://localhost:8000").rstrip("/")
NOTIFICATIONS_SMS_LINKS = env_bool("NOTIFICATIONS_SMS_LINKS", False)
# Requests to /a/{token}/ per token and per client address, each per minute.
APPOINTMENT_LINK_RATE_PER_MINUTE = env_int("APPOINTMENT_LINK_RATE_PER_MINUTE", 20)
