"""The performance benchmark: `make bench` (or `python -m bench [--quick]`).

It runs the service as production does (gunicorn, a Celery worker subprocess, PostgreSQL, Redis,
the real twilio client talking to the stand-in Twilio server of tests/) and measures a Celery
no-op baseline, the immediate path (booking → confirmations sent), the sweep, the cost of
claiming a batch as the table grows, the worker's peak memory, and the SMS rate limit (the rate
sent under load, and the throughput with a limit never reached). It prints one table and writes
it to docs/PERFORMANCE.md. It asserts nothing: speed is reported, never judged.
"""
