"""The trail: every staff read of a patient's data appends one entry per patient read.

Views and admin pages announce a read with appointments' `patient_data_read` signal
(appointments/trail.py); the receiver here writes the entries. A patient reading their own data
leaves none: the trail answers "which staff member looked"."""

from django.dispatch import receiver

from appointments.signals import patient_data_read

from .models import AccessLogEntry


def client_address(request):
    """The client's address as the throttles see it: the socket's, or the one the trusted proxies
    (REST_FRAMEWORK's NUM_PROXIES, from TRUSTED_PROXY_COUNT) say they received."""
    # Imported here: every process connects this module's receiver, and the worker needs no DRF.
    from rest_framework.throttling import BaseThrottle

    return (BaseThrottle().get_ident(request) or "")[:64]


def record(request, patient_ids, action):
    """Append one entry per patient read by this request's staff member; returns them."""
    user = request.user
    if not (user.is_authenticated and user.is_staff):
        return []
    address = client_address(request)
    entries = [
        AccessLogEntry(
            user_id=user.pk,
            username=user.get_username(),
            patient_id=patient_id,
            action=action,
            path=request.path[:2048],
            remote_address=address,
        )
        for patient_id in sorted({pk for pk in patient_ids if pk is not None})
    ]
    return AccessLogEntry.objects.bulk_create(entries)


@receiver(patient_data_read, dispatch_uid="privacy.trail")
def _record_read(sender, request, patient_ids, action, **kwargs):
    record(request, patient_ids, action)
