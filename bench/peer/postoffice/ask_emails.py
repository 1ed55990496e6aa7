"""post-office's side of "N emails asked for", inside the timed window: one `mail.send(...,
template=NAME, priority="medium")` an email, as a user's code asks for one, post-office
rendering each at queue time (from its EmailTemplate, read through its template cache). Run on
a queue prepared by queue_emails.py. Usage: ask_emails.py FIRST COUNT CONTEXT_JSON NAME."""

import json
import sys

import django

django.setup()

from post_office import mail  # noqa: E402

first, count, context, name = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
for n in range(first, first + count):
    mail.send(
        [f"peer{n}@example.com"],
        "appointments@clinic.example",
        template=name,
        context=context,
        priority="medium",  # queued, not sent now: post-office 3.12 has no priority "queued"
    )
