import random
from datetime import timedelta

from django.conf import settings


def retry_delay(attempts):
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempts))."""
    ceiling = min(settings.NOTIFICATIONS_BACKOFF_MAX, settings.NOTIFICATIONS_BACKOFF_BASE * 2**attempts)
    return timedelta(seconds=random.uniform(0, ceiling))
