"""GET, POST /api/webhook-endpoints/ and DELETE /api/webhook-endpoints/{id}/: staff with the
model's permissions (the Clinic manager role) register the clinic's endpoints; the secret is in
the answer to the POST and never again."""

from django.conf import settings
from rest_framework import mixins, serializers, viewsets

from integrations.models import EventType, WebhookEndpoint


class WebhookEndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=EventType.choices), allow_empty=False)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_url(self, url):
        # Events carry patients' ids and appointments: in production they travel encrypted only.
        if settings.PRODUCTION and not url.lower().startswith("https://"):
            raise serializers.ValidationError("An endpoint's URL must be https:// in production.")
        return url

    def validate_events(self, events):
        return list(dict.fromkeys(events))  # each once, in the order given


class NewWebhookEndpointSerializer(WebhookEndpointSerializer):
    """The answer to a POST: the endpoint and, this once, its secret."""

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = [*WebhookEndpointSerializer.Meta.read_only_fields, "secret"]


class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    queryset = WebhookEndpoint.objects.order_by("id")

    def get_serializer_class(self):
        return NewWebhookEndpointSerializer if self.action == "create" else WebhookEndpointSerializer
