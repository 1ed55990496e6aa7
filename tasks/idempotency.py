from celery import shared_task

from appointments import allowance
from appointments.idempotency import purge_expired


@shared_task(name="appointments.purge_idempotency_keys")
def purge_idempotency_keys():
    """Daily on beat: expired Idempotency-Key rows go, and the allowances' records past their windows."""
    allowance.purge_expired()
    return purge_expired()
