"""Typed reads of the environment, each with its embedded default."""

import os
from datetime import time

from django.core.exceptions import ImproperlyConfigured


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def _env_number(name, default, cast):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return cast(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


def env_int(name, default):
    return _env_number(name, default, int)


def env_float(name, default):
    return _env_number(name, default, float)


def env_list(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_time_window(name, default):
    """'21:00-08:00' -> (time(21), time(8)); an empty value -> None."""
    value = os.environ.get(name, default).strip()
    if not value:
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError:
        raise ImproperlyConfigured(f"{name} must look like 21:00-08:00, not {value!r}") from None
    return start, end


def env_pairs(name):
    """'reminder=HX1,cancellation=HX2' -> {'reminder': 'HX1', 'cancellation': 'HX2'}."""
    pairs = {}
    for item in env_list(name):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not (sep and key and value):
            raise ImproperlyConfigured(f"{name} must be key=value pairs separated by commas, not {item!r}")
        pairs[key] = value
    return pairs
