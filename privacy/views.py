"""The data-rights endpoints: a patient's export and erasure, and the auditors' trail."""

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from appointments.access import visible_patients
from appointments.models import Patient
from appointments.trail import announce

from . import erasure, export
from .models import AccessLogEntry, Erasure


class ExportView(APIView):
    """GET /api/patients/{id}/export/: everything held about the patient, as one JSON document,
    streamed. The patient for themselves; staff with appointments.export_patient."""

    patient_actions = ("GET",)
    action_permissions = {"GET": ["appointments.export_patient"]}
    queryset = Patient.objects.none()  # for the schema; rows come from visible_patients

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, operation_id="patients_export")
    def get(self, request, pk):
        patient = get_object_or_404(visible_patients(request.user), pk=pk)
        announce(request, [patient.pk], "patient.export")
        response = StreamingHttpResponse(export.buffered(export.document(patient)), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="patient-{patient.pk}.json"'
        return response


class EraseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class ErasureSerializer(serializers.ModelSerializer):
    class Meta:
        model = Erasure
        fields = ["patient_id", "at", "by", "reason"]


class EraseView(APIView):
    """POST /api/patients/{id}/erase/ {reason}: staff with appointments.erase_patient. Again: 200,
    the first erasure's tombstone, nothing changed."""

    action_permissions = {"POST": ["appointments.erase_patient"]}
    queryset = Patient.objects.none()

    @extend_schema(request=EraseSerializer, responses={200: ErasureSerializer}, operation_id="patients_erase")
    def post(self, request, pk):
        patient = get_object_or_404(visible_patients(request.user), pk=pk)
        body = EraseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        tombstone, _ = erasure.erase(patient.pk, by=request.user.get_username(), reason=body.validated_data["reason"])
        return Response(ErasureSerializer(tombstone).data)


class AccessLogEntrySerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="username", read_only=True)
    patient = serializers.IntegerField(source="patient_id", read_only=True)

    class Meta:
        model = AccessLogEntry
        fields = ["id", "at", "user", "patient", "action", "path", "remote_address"]


PATIENT_FILTER = OpenApiParameter("patient", int, description="Only the entries about this patient.")


@extend_schema(parameters=[PATIENT_FILTER])
class AccessLogViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Auditors (privacy.view_accesslogentry) read the trail; no one changes it."""

    serializer_class = AccessLogEntrySerializer

    def get_queryset(self):
        entries = AccessLogEntry.objects.order_by("-at", "-id")
        patient = self.request.query_params.get("patient")
        if patient is not None:
            if not patient.isascii() or not patient.isdigit() or len(patient) > 18:
                raise ValidationError({"patient": ["A patient's id (a whole number)."]})
            entries = entries.filter(patient_id=int(patient))
        return entries
