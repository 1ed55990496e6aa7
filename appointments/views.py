from django.db import transaction
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from . import allowance, contact, services
from .access import visible_appointments, visible_patients
from .idempotency import KEY_PARAMETER, idempotent
from .serializers import (
    AppointmentSerializer,
    CancelSerializer,
    PatientSerializer,
    RescheduleSerializer,
    VerifyContactSerializer,
)
from .signals import By
from .trail import PatientDataReads


class PatientViewSet(
    PatientDataReads,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Staff register patients; a patient reads and changes their own preferences."""

    serializer_class = PatientSerializer
    trail_patient = "pk"
    patient_actions = ("retrieve", "update", "partial_update", "verify")
    action_permissions = {"verify": ["appointments.change_patient"]}

    def get_queryset(self):
        return visible_patients(self.request.user).order_by("pk")

    # 429: a patient's allowance of verification codes (appointments/contact.py).
    @extend_schema(responses={200: PatientSerializer, 429: None})
    def partial_update(self, request, *args, **kwargs):
        return super().partial_update(request, *args, **kwargs)

    @extend_schema(responses={200: PatientSerializer, 429: None})
    def update(self, request, *args, **kwargs):
        return super().update(request, *args, **kwargs)

    def perform_update(self, serializer):
        # One transaction: a refused or failed code leaves the patient's other changes unsaved too.
        with transaction.atomic():
            serializer.save()
            contact.request_changes(serializer.instance, serializer.contact_changes)

    @extend_schema(request=VerifyContactSerializer, responses={200: PatientSerializer})
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Confirm a new email or phone with the code sent to it."""
        patient = self.get_object()
        body = VerifyContactSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not contact.confirm(patient, **body.validated_data):
            raise ValidationError({"code": ["This is not the code we sent."]})
        patient.refresh_from_db()
        return Response(PatientSerializer(patient, context=self.get_serializer_context()).data)


class AppointmentViewSet(
    PatientDataReads, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    serializer_class = AppointmentSerializer
    patient_actions = ("create", "list", "retrieve", "reschedule", "cancel", "confirm")
    # Moving, cancelling and confirming change the appointment (DRF would read a POST as add_*).
    action_permissions = dict.fromkeys(("reschedule", "cancel", "confirm"), ["appointments.change_appointment"])

    def get_queryset(self):
        return visible_appointments(self.request.user).select_related("patient").order_by("starts_at", "pk")

    # 429: a patient's hourly allowance of bookings (appointments/allowance.py).
    @extend_schema(
        parameters=[KEY_PARAMETER],
        responses={201: AppointmentSerializer, 429: None},
        examples=[
            OpenApiExample(
                "A booking",
                request_only=True,
                value={
                    "patient": 1,
                    "provider": "Dr. Ada Lovelace",
                    "starts_at": "2030-05-01T09:30:00+02:00",
                    "duration_minutes": 30,
                    "location": "Room 4, Main Street Clinic",
                    "reason": "Check-up",
                },
            )
        ],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        with transaction.atomic():
            if not self.request.user.is_staff:
                allowance.check(serializer.validated_data["patient"])
            serializer.instance = services.book(**serializer.validated_data)

    # 429: a patient's daily allowance of reschedules and cancellations (appointments/allowance.py).
    @extend_schema(
        request=RescheduleSerializer,
        responses={200: AppointmentSerializer, 409: None, 429: None},
        parameters=[KEY_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def reschedule(self, request, pk=None):
        appointment = self.get_object()
        body = RescheduleSerializer(data=request.data, context={"patient": appointment.patient})
        body.is_valid(raise_exception=True)
        try:
            appointment = services.reschedule(
                appointment.pk, starts_at=body.validated_data["starts_at"], by_patient=not request.user.is_staff
            )
        except services.AppointmentConflict as exc:
            return Response({"status": [str(exc)]}, status=status.HTTP_409_CONFLICT)
        return Response(AppointmentSerializer(appointment).data)

    @extend_schema(
        request=CancelSerializer, responses={200: AppointmentSerializer, 429: None}, parameters=[KEY_PARAMETER]
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        appointment = self.get_object()
        body = CancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        appointment = services.cancel(
            appointment.pk, reason=body.validated_data["reason"], by_patient=not request.user.is_staff
        )
        return Response(AppointmentSerializer(appointment).data)

    @extend_schema(request=None, responses={200: AppointmentSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """The patient will come: sets confirmed_at (once; confirming again changes nothing)."""
        appointment = self.get_object()
        try:
            by = By.STAFF if request.user.is_staff else By.PATIENT
            appointment = services.confirm(appointment.pk, by=by)
        except services.AppointmentConflict as exc:
            return Response({"status": [str(exc)]}, status=status.HTTP_409_CONFLICT)
        return Response(AppointmentSerializer(appointment).data)
