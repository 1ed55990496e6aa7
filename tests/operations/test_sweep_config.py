"""Every accepted configuration can send: a lease, time limits, timeouts and rate limit under
which a sweep could claim no row are refused at start (`notifications.E005`), and the check
agrees with the sweep itself on which configurations those are."""

import pytest
from django.core import checks

from notifications.models import Notification
from notifications.outbox import sweeps
from tests.config.test_deployment import manage_check, production_env

SWEEP = "notifications.sweep_due"


def test_a_lease_under_which_a_sweep_claims_nothing_is_refused_at_start(tmp_path):
    # Issue 27, finding 5: 10 s with the defaults; the soft limit (5 s) is under one send (21 s).
    result = manage_check(production_env(tmp_path, NOTIFICATIONS_LEASE_SECONDS="10"))

    assert result.returncode != 0, result.stdout + result.stderr
    assert "notifications.E005" in result.stderr
    for named in (
        "NOTIFICATIONS_LEASE_SECONDS=10",
        "RATE_LIMIT_MAX_WAIT=1",
        "TWILIO_HTTP_TIMEOUT=10",
        "EMAIL_TIMEOUT=10",
    ):
        assert named in result.stderr


def test_the_same_lease_with_timeouts_that_fit_is_accepted(tmp_path):
    env = production_env(
        tmp_path,
        NOTIFICATIONS_LEASE_SECONDS="10",
        TWILIO_HTTP_TIMEOUT="1",
        EMAIL_TIMEOUT="2",
        RATE_LIMIT_MAX_WAIT="0.5",
    )

    result = manage_check(env)

    assert result.returncode == 0, result.stderr
    assert "notifications.E005" not in result.stderr


@pytest.mark.parametrize(
    ("lease", "http_timeout", "max_wait", "threads"),
    [
        (10, 10.0, 1.0, 8),  # issue 27's finding: the defaults but the lease
        (10, 2.0, 1.0, 8),  # a soft limit of exactly one send: the sweep's own start leaves less
        (12, 2.0, 1.0, 8),  # one send with a second to spare
        (300, 10.0, 1.0, 8),  # the defaults
        (300, 10.0, 1.0, 0),  # no send thread
        (4, 0.5, 0.5, 1),  # the email timeout alone outlasts the soft limit
    ],
)
def test_the_check_refuses_exactly_the_configurations_whose_sweep_claims_nothing(
    db, book, make_patient, settings, caplog, lease, http_timeout, max_wait, threads
):
    settings.NOTIFICATIONS_LEASE_SECONDS = lease
    settings.CELERY_TASK_ANNOTATIONS = {SWEEP: {"soft_time_limit": lease // 2, "time_limit": lease * 2 // 3}}
    settings.TWILIO_HTTP_TIMEOUT = http_timeout
    settings.EMAIL_TIMEOUT = 2
    settings.RATE_LIMIT_MAX_WAIT = max_wait
    settings.NOTIFICATIONS_SEND_THREADS = threads
    book(make_patient(channels=["email"]))

    refused = "notifications.E005" in {message.id for message in checks.run_checks()}
    report = sweeps.sweep(time_limit=lease // 2)  # as the beat task runs it

    claimed = Notification.objects.exclude(attempts=0).count()
    assert (refused, claimed == 0) in {(True, True), (False, False)}, (refused, str(report))
    # A worker runs no check that stops it: each of its sweeps that can claim nothing says so.
    said = any("notifications.E005" in record.getMessage() for record in caplog.records if record.levelname == "ERROR")
    assert said == refused
