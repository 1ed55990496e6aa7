"""An email service is chosen by the environment alone: EMAIL_BACKEND names an anymail backend and
every ANYMAIL_<NAME> variable becomes anymail's <NAME> setting; without them the default stays
(make run needs no account). Read in a fresh process, as the service starts."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def settings_with(**variables):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANYMAIL_", "EMAIL_BACKEND"))}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings"} | variables
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "from anymail.utils import get_anymail_setting as g; "
        "print(json.dumps([settings.EMAIL_BACKEND, settings.ANYMAIL, "
        "g('server_token', esp_name='Postmark', default=None), g('webhook_secret', default=None)]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_postmark_by_environment():
    backend, anymail, token, secret = settings_with(
        EMAIL_BACKEND="anymail.backends.postmark.EmailBackend",
        ANYMAIL_POSTMARK_SERVER_TOKEN="server-token",
        ANYMAIL_WEBHOOK_SECRET="esp:secret",
    )

    assert backend == "anymail.backends.postmark.EmailBackend"
    assert anymail == {"POSTMARK_SERVER_TOKEN": "server-token", "WEBHOOK_SECRET": "esp:secret"}
    assert (token, secret) == ("server-token", "esp:secret")


def test_without_an_email_service_the_default_backend_stays():
    backend, anymail, _, _ = settings_with()

    assert backend == "notifications.channels.email.ConsoleEmailBackend"
    assert anymail == {}
