"""The Celery app: every setting lives in Django settings under the CELERY_ prefix."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")


@task_prerun.connect
@task_postrun.connect
def close_broken_or_old_db_connections(**kwargs):
    """Workers keep their database connections between tasks (CELERY_DB_REUSE_MAX), as web
    requests do: drop only those that broke or outlived CONN_MAX_AGE."""
    from django.db import close_old_connections

    close_old_connections()
