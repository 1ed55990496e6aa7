"""What a message says of its appointment, taken when its row is planned: a later edit of the
patient or the appointment cannot change a message already planned."""

from django.conf import settings


def snapshot(appointment, previous_starts_at=None):
    patient = appointment.patient
    return {
        "patient_name": patient.name,
        "timezone": patient.timezone,
        "language": patient.language,
        "provider": appointment.provider,
        "starts_at": appointment.starts_at.isoformat(),
        "previous_starts_at": previous_starts_at.isoformat() if previous_starts_at else "",
        "duration_minutes": appointment.duration_minutes,
        "location": appointment.location,
        "reason": appointment.reason,
        "cancel_reason": appointment.cancel_reason,
        "clinic_name": settings.CLINIC_NAME,
        # The calendar invitation's: a later move has a higher one.
        "sequence": appointment.sequence,
    }
