"""Fixtures of the reliability suite (see docs/RELIABILITY.md). Each test breaks something for
real: real worker subprocesses on the test database, a private or the tests' Redis, the
stand-in Twilio over loopback, emails written as files."""

import logging

import pytest

from config.celery import app as celery_app
from tests.conftest import TEST_REDIS_URL

from . import harness


def pytest_collection_modifyitems(config, items):
    """Every test in this folder carries the `reliability` marker (`-m "not reliability"` skips them)."""
    here = str(harness.BASE_DIR / "tests" / "reliability")
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter):
    """The session's figures as a Markdown table (docs/RELIABILITY.md keeps one), by scenario;
    the lines of a parametrized scenario are summed into one row."""
    if not harness.FIGURES:
        return
    columns = ["scenario", "db", "rows", "sent", "duplicates", "lost", "stuck", "5xx"]
    grouped = {}
    for figures in harness.FIGURES:
        grouped.setdefault((figures["scenario"], figures["db"]), []).append(figures)
    terminalreporter.section("reliability figures")
    terminalreporter.write_line("| " + " | ".join(columns) + " | other |")
    terminalreporter.write_line("|" + " --- |" * (len(columns) + 1))
    for (scenario, db), lines in sorted(grouped.items()):
        if len(lines) == 1:
            row = lines[0]
            other = ", ".join(f"{k}={v}" for k, v in row.items() if k not in columns)
        else:
            row = {"scenario": scenario, "db": db, **{c: sum(line[c] for line in lines) for c in columns[2:]}}
            keys = [k for k in lines[0] if k not in columns and k not in ("endpoint", "running_total")]
            values = {k: sorted({str(line.get(k)) for line in lines}) for k in keys}
            other = ", ".join([f"cases={len(lines)}"] + [f"{k}={'/'.join(v)}" for k, v in values.items()])
        terminalreporter.write_line("| " + " | ".join(str(row[c]) for c in columns) + f" | {other} |")


QUIETED = {
    "notifications.outbox.delivery": logging.WARNING,
    "notifications.inbound.webhooks": logging.ERROR,
    "django.request": logging.ERROR,
}


@pytest.fixture(autouse=True)
def quiet_logs():
    """Thousands of "notification N sent" and "Bad Request" lines would bury the figures under -s
    (a 5xx is still logged: django.request logs it as an error)."""
    loggers = {name: logging.getLogger(name) for name in QUIETED}
    levels = {name: logger.level for name, logger in loggers.items()}
    for name, logger in loggers.items():
        logger.setLevel(QUIETED[name])
    try:
        yield
    finally:
        for name, logger in loggers.items():
            logger.setLevel(levels[name])


@pytest.fixture
def spawn(tmp_path, transactional_db):
    """Start subprocesses through this; all are stopped, by pid, when the test ends, before
    the database is flushed (so no worker is still writing)."""
    processes = harness.Processes(tmp_path / "logs")
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture
def mail_dir(tmp_path):
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def test_broker():
    """The tests' own Redis database (TEST_REDIS_URL), emptied: no task of an earlier test
    (a killed worker's unacknowledged ones among them) is left to run."""
    assert celery_app.conf.broker_url == TEST_REDIS_URL
    with celery_app.connection_for_write() as connection:
        connection.default_channel.client.flushdb()
    return TEST_REDIS_URL


@pytest.fixture
def worker_env(twilio_server, mail_dir, test_broker):
    """env(**overrides): a subprocess environment on the test database and the tests' Redis."""

    def env(**overrides):
        overrides.setdefault("redis_url", test_broker)
        overrides.setdefault("db_url", harness.database_url())
        return harness.subprocess_env(twilio_server, mail_dir=mail_dir, **overrides)

    return env


@pytest.fixture
def skip_on_sqlite(db):
    if harness.is_sqlite():
        pytest.skip("needs a database reached over the network (PostgreSQL); SQLite is a local file")
