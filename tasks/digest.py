from celery import shared_task

from notifications.operations import digest


@shared_task(name="notifications.send_staff_digest")
def send_staff_digest():
    """Daily on beat: email staff the last day's dead rows and failures, when there are any."""
    return digest.send_digest()
