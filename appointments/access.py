"""Who may see what: staff see everything, a patient only their own."""

from .models import Appointment, Patient


def patient_of(user):
    return getattr(user, "patient", None) if user.is_authenticated else None


def visible_patients(user):
    if user.is_staff:
        return Patient.objects.all()
    patient = patient_of(user)
    return Patient.objects.filter(pk=patient.pk) if patient else Patient.objects.none()


def visible_appointments(user):
    if user.is_staff:
        return Appointment.objects.all()
    patient = patient_of(user)
    return Appointment.objects.filter(patient=patient) if patient else Appointment.objects.none()
