"""Queue the peer's emails, outside its timed window: migrate, empty its tables, and queue N
emails from one EmailTemplate (our reminder's three templates) with the context our reminder
renders with. post-office renders here, at queue time. Usage: queue_emails.py N CONTEXT_JSON."""

import json
import sys

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from post_office import mail  # noqa: E402
from post_office.models import Email, EmailTemplate, Log  # noqa: E402

count, context = int(sys.argv[1]), json.loads(sys.argv[2])
templates = json.loads(sys.stdin.read())
call_command("migrate", interactive=False, verbosity=0)
with connection.cursor() as cursor:
    tables = ", ".join(model._meta.db_table for model in (Log, Email, EmailTemplate))
    cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
template = EmailTemplate.objects.create(name="reminder", **templates)
mail.send_many(
    [
        {
            "recipients": [f"peer{n}@example.com"],
            "sender": "appointments@clinic.example",
            "template": template,
            "context": context,
        }
        for n in range(count)
    ]
)
