"""Queue the peer's emails, outside its timed window: migrate, empty its tables, and queue N
emails from one EmailTemplate named NAME (one of our messages' three templates, on stdin) with
the context our message renders with. post-office renders here, at queue time. Usage:
queue_emails.py N CONTEXT_JSON [NAME] (N may be 0: the template alone, for ask_emails.py)."""

import json
import sys

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from post_office import mail  # noqa: E402
from post_office.models import Email, EmailTemplate, Log  # noqa: E402

count, context = int(sys.argv[1]), json.loads(sys.argv[2])
name = sys.argv[3] if len(sys.argv) > 3 else "reminder"
templates = json.loads(sys.stdin.read())
call_command("migrate", interactive=False, verbosity=0)
with connection.cursor() as cursor:
    tables = ", ".join(model._meta.db_table for model in (Log, Email, EmailTemplate))
    cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
template = EmailTemplate.objects.create(name=name, **templates)
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
