import random
from datetime import timedelta

from django.conf import settings


def retry_delay(attempts):
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**attempts))."""
    # The exponent is capped so a huge attempt count cannot overflow the float.
    ceiling = min(settings.NOTIFICATIONS_BACKOFF_MAX, settings.NOTIFICATIONS_BACKOFF_BASE * 2 ** min(attempts, 64))
    return timedelta(seconds=random.uniform(0, ceiling))
