"""`make bench-peer` (`python -m bench.peer`): ours against django-post-office, the library a user
would pick instead, sending the same emails over SMTP to one counting sink on loopback.

The peer runs in a virtualenv of its own (var/bench/peer-venv, made on first use; never in
requirements.txt), from a minimal Django project copied to a temporary directory, on a
PostgreSQL database of its own. Each side sends N reminder emails, each to its own address,
rendered from the same three templates with the same values: single process
(`process_pending_notifications --max N` against `send_queued_mail --processes 1`) and P
processes (our prefork worker sweeping against `--processes P`), the two sides alternating,
medians of the pairs. It asserts nothing: speed is reported, never judged.
"""
