"""/api/templates/: the clinic's message templates (staff), their preview, history and restore.
Thin: parsing here, the rules in template_checks and template_store."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from appointments.models import Appointment
from notifications.channels.choices import Channel
from notifications.messages.checks import check_template
from notifications.messages.kinds import NotificationKind
from notifications.messages.models import MessageTemplate, MessageTemplateRevision
from notifications.messages.preview import render_preview
from notifications.messages.store import KEY, delete_template, restore_revision, save_template


def refused(exc):
    """A Django ValidationError from the core as DRF's 400, keyed by field."""
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})


class MessageTemplateSerializer(serializers.ModelSerializer):
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = MessageTemplate
        fields = ["id", "channel", "kind", "language", "subject", "text", "html", "updated_at", "updated_by"]
        read_only_fields = ["updated_at"]
        # One per channel, kind and language: checked by the store, which names the field.
        validators = []

    def create(self, validated_data):
        return self._save(None, validated_data)

    def update(self, template, validated_data):
        return self._save(template, validated_data)

    def _save(self, template, fields):
        try:
            return save_template(template, fields, self.context["request"].user)
        except DjangoValidationError as exc:
            raise refused(exc) from None


class PreviewSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    kind = serializers.ChoiceField(choices=NotificationKind.choices)
    language = serializers.CharField()
    subject = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    text = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    html = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    appointment = serializers.PrimaryKeyRelatedField(
        queryset=Appointment.objects.select_related("patient"), required=False, allow_null=True, default=None
    )


PREVIEW_RESPONSE = inline_serializer(
    "TemplatePreview",
    {
        "subject": serializers.CharField(),
        "text": serializers.CharField(),
        "html": serializers.CharField(),
        "characters": serializers.IntegerField(required=False),
        "encoding": serializers.CharField(required=False),
        "segments": serializers.IntegerField(required=False),
        "max_segments": serializers.IntegerField(required=False),
    },
)


class MessageTemplateViewSet(viewsets.ModelViewSet):
    """Staff: the clinic's templates, one per channel, kind and language."""

    serializer_class = MessageTemplateSerializer
    action_permissions = {"preview": ["notifications.preview_messagetemplate"]}
    queryset = MessageTemplate.objects.select_related("updated_by")

    def perform_destroy(self, template):
        delete_template(template, self.request.user)

    @extend_schema(request=PreviewSerializer, responses={200: PREVIEW_RESPONSE})
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """The message as a patient would get it, with these parts (a blank part: the file's
        wording) and the appointment given, or sample data."""
        given = PreviewSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        parts = {part: data[part] for part in ("subject", "text", "html")}
        try:
            stored = check_template(
                data["channel"], data["kind"], data["language"], parts, saving=False, appointment=data["appointment"]
            )
        except DjangoValidationError as exc:
            raise refused(exc) from None
        return Response(render_preview(data["channel"], data["kind"], data["language"], stored, data["appointment"]))


class RevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MessageTemplateRevision
        fields = ["id", "channel", "kind", "language", "action", "editor_name", "edited_at", "before", "after"]


class MessageTemplateRevisionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Staff: every edit of the templates, newest first; any can be restored."""

    serializer_class = RevisionSerializer
    action_permissions = {"restore": ["notifications.restore_messagetemplate"]}

    @extend_schema(parameters=[OpenApiParameter(name) for name in KEY])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        filters = {name: self.request.query_params[name] for name in KEY if self.request.query_params.get(name)}
        return MessageTemplateRevision.objects.filter(**filters)

    @extend_schema(request=None, responses={200: MessageTemplateSerializer})
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        try:
            template = restore_revision(self.get_object(), request.user)
        except DjangoValidationError as exc:
            raise refused(exc) from None
        return Response(MessageTemplateSerializer(template).data)
