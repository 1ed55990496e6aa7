"""The notification endpoints: an appointment's rows, the staff list and retry, the inbox."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response

from appointments.access import patient_of, visible_appointments
from appointments.trail import PatientDataReads
from notifications.messages.rendering import render
from notifications.outbox.dispatch import enqueue
from notifications.outbox.models import Channel, Notification, NotificationKind, NotificationStatus


class NotificationSerializer(serializers.ModelSerializer):
    # What the message said when it went out (empty until it is sent).
    subject = serializers.CharField(source="rendered_subject", read_only=True)
    text = serializers.CharField(source="rendered_text", read_only=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "appointment",
            "channel",
            "kind",
            "status",
            "scheduled_for",
            "attempts",
            "next_attempt_at",
            "last_error",
            "error_code",
            "provider_message_id",
            "delivery_status",
            "sent_at",
            "subject",
            "text",
        ]

    def to_representation(self, notification):
        data = super().to_representation(notification)
        request = self.context.get("request")
        if request is not None and not request.user.is_staff:
            # Patients read a plain reason; the SMTP server's or Twilio's words are for staff.
            data["last_error"] = plain_reason(notification)
            data["error_code"] = ""
        return data


def plain_reason(notification):
    if not notification.last_error:
        return ""
    if notification.status == NotificationStatus.FAILED:
        if notification.next_attempt_at is None:
            return "This message could not be delivered to this address."
        return "Not delivered yet; it will be tried again."
    if notification.status == NotificationStatus.SKIPPED:
        return "Not sent on this channel; check your contact details and preferences."
    return ""


class AppointmentNotificationsView(PatientDataReads, ListAPIView):
    """GET /api/appointments/{id}/notifications/: every row planned for the appointment, a page at
    a time like every list."""

    serializer_class = NotificationSerializer
    patient_actions = ("GET",)
    trail_action = "appointment.notifications"

    def get_queryset(self):
        appointment = get_object_or_404(visible_appointments(self.request.user), pk=self.kwargs["pk"])
        return appointment.notifications.order_by("scheduled_for", "id")


FILTERS = {"status": NotificationStatus, "channel": Channel, "kind": NotificationKind}


class NotificationViewSet(PatientDataReads, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Staff: every row, filtered by status, channel and kind; dead rows can be retried."""

    serializer_class = NotificationSerializer
    action_permissions = {"retry": ["notifications.retry_notification"]}

    @extend_schema(parameters=[OpenApiParameter(name, enum=choices.values) for name, choices in FILTERS.items()])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def get_queryset(self):
        queryset = Notification.objects.order_by("-scheduled_for", "-id")
        errors = {}
        for name, choices in FILTERS.items():
            value = self.request.query_params.get(name)
            if value is None:
                continue
            # An empty value (?status=) is refused like any other outside the schema's enum.
            if value not in choices.values:
                errors[name] = [f"{value!r} is not one of {', '.join(choices.values)}."]
            queryset = queryset.filter(**{name: value})
        if errors:
            raise ValidationError(errors)
        return queryset

    @extend_schema(request=None, responses={200: NotificationSerializer, 409: None})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        notification = self.get_object()
        if not Notification.objects.filter(pk=notification.pk).retry():
            message = f"Only failed notifications can be retried; this one is {notification.status}."
            return Response({"status": [message]}, status=409)
        notification.refresh_from_db()
        enqueue([notification.pk])
        return Response(NotificationSerializer(notification).data)


class InboxItemSerializer(serializers.ModelSerializer):
    text = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "appointment", "kind", "text", "sent_at", "read_at"]

    def get_text(self, notification) -> str:
        # Rows sent before messages were kept have no copy: rendered again.
        return notification.rendered_text or render(notification).text


class InboxViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The patient's in-app notifications, newest first, with the unread count."""

    serializer_class = InboxItemSerializer
    patient_actions = ("list", "read")
    # Staff have no inbox of their own; reading one is looking at notifications.
    action_permissions = {"read": ["notifications.view_notification"]}

    def get_queryset(self):
        patient = patient_of(self.request.user)
        if patient is None:
            return Notification.objects.none()
        return Notification.objects.filter(
            patient=patient, channel=Channel.IN_APP, status=NotificationStatus.SENT
        ).order_by("-sent_at", "-id")

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        response.data["unread"] = self.get_queryset().filter(read_at__isnull=True).count()
        return response

    @extend_schema(request=None, responses={200: InboxItemSerializer})
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notification = self.get_object()
        notification.mark_read()
        return Response(InboxItemSerializer(notification).data)
