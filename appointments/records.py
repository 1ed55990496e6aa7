"""The records staff keep that a booking names: providers and locations."""

from rest_framework import mixins, serializers, viewsets
from rest_framework.validators import UniqueValidator

from .models import Location, Provider


class RecordName(serializers.CharField):
    """The name of a record staff keep, matched in any case and answered as kept: anything else is
    refused, so free text a patient types never goes out from the clinic's sender."""

    def __init__(self, model, **kwargs):
        self.model = model
        super().__init__(max_length=200, **kwargs)

    def to_internal_value(self, data):
        name = super().to_internal_value(data)
        if not name:
            return name
        # Names are unique in any case, so no ORDER BY (compiling one cost CPU for nothing).
        kept = self.model.objects.filter(name__iexact=name).order_by().values_list("name", flat=True)[:1]
        if not kept:
            plural = self.model._meta.verbose_name_plural
            raise serializers.ValidationError(f"Not one of the clinic's {plural} (GET /api/{plural}/).")
        return kept[0]


def unique_name(model):
    return serializers.CharField(
        max_length=200,
        validators=[UniqueValidator(model.objects.all(), lookup="iexact", message="This name is already kept.")],
    )


class ProviderSerializer(serializers.ModelSerializer):
    name = unique_name(Provider)

    class Meta:
        model = Provider
        fields = ["id", "name"]


class LocationSerializer(serializers.ModelSerializer):
    name = unique_name(Location)

    class Meta:
        model = Location
        fields = ["id", "name", "address"]


class RecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Patients list them (to pick whom to book with); staff read and add them as their model
    permissions allow."""

    patient_actions = ("list", "retrieve")

    def get_queryset(self):
        return self.serializer_class.Meta.model.objects.order_by("name", "pk")


class ProviderViewSet(RecordViewSet):
    serializer_class = ProviderSerializer


class LocationViewSet(RecordViewSet):
    serializer_class = LocationSerializer
