from celery import shared_task

from accounts.tokens import purge_expired_tokens as purge


@shared_task(name="accounts.purge_expired_tokens")
def purge_expired_tokens():
    """Daily on beat: expired sign-in tokens go (a request no longer sweeps them)."""
    return purge()
