import re
import zoneinfo
from datetime import UTC

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.phone_numbers import refusal

from .access import visible_patients
from .horizon import check_horizon
from .models import Appointment, ContactChannel, Location, Patient, Provider
from .reachability import warnings_for
from .records import RecordName
from .signals import consent_changed

# ASCII digits only: `\d` would also take Arabic-Indic and full-width digits, which no provider dials.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
EMAIL_TAKEN = "An account with this email already exists."
TIMEZONES = zoneinfo.available_timezones()


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a UTC offset; a naive time is refused rather than guessed."""

    def to_internal_value(self, value):
        try:
            parsed = parse_datetime(value) if isinstance(value, str) else None
        except ValueError:  # well formed but impossible: 2030-02-30, or an offset of 24 hours or more
            parsed = None
        if parsed is None:
            self.fail("invalid", format="ISO 8601, e.g. 2030-05-01T09:30:00+02:00")
        if timezone.is_naive(parsed):
            raise serializers.ValidationError("Include a UTC offset, e.g. 2030-05-01T09:30:00+02:00.")
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:00-05:00 is past the last representable instant in UTC
            raise serializers.ValidationError("Must fall before the year 10000 in UTC.") from None


def future(value):
    if value <= timezone.now():
        raise serializers.ValidationError("Must be in the future.")
    return value


class ChannelList(serializers.ListField):
    child = serializers.ChoiceField(choices=ContactChannel.values)

    def to_internal_value(self, data):
        return list(dict.fromkeys(super().to_internal_value(data)))  # drop repeats, keep order


class ReachabilityWarningSerializer(serializers.Serializer):
    channel = serializers.CharField()
    message = serializers.CharField()


WARNINGS = extend_schema_field(ReachabilityWarningSerializer(many=True))


class PatientSerializer(serializers.ModelSerializer):
    channels = ChannelList(allow_empty=False)
    opted_out = ChannelList(required=False)
    password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})
    # A patient changing their own password proves they know the current one; staff need not.
    current_password = serializers.CharField(write_only=True, required=False, style={"input_type": "password"})
    # A choice, so the schema lists the languages; the message names them.
    language = serializers.ChoiceField(
        choices=[code for code, _ in settings.LANGUAGES],
        required=False,
        error_messages={
            "invalid_choice": "{input!r} is not one of " + ", ".join(code for code, _ in settings.LANGUAGES) + "."
        },
    )
    can_sign_in = serializers.SerializerMethodField()
    # The contact fields the patient changed that wait for their code (appointments/contact.py).
    pending_verification = serializers.SerializerMethodField()
    # Each chosen channel the patient cannot be reached on, and what happens instead.
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = Patient
        fields = [
            "id",
            "name",
            "email",
            "phone",
            "timezone",
            "language",
            "channels",
            "opted_out",
            "password",
            "current_password",
            "can_sign_in",
            "pending_verification",
            "warnings",
        ]

    def get_can_sign_in(self, patient) -> bool:
        return patient.user_id is not None

    @WARNINGS
    def get_warnings(self, patient):
        return warnings_for(patient) if patient.pk else []

    def get_pending_verification(self, patient) -> list[str]:
        return sorted(patient.contact_changes.values_list("field", flat=True)) if patient.pk else []

    def validate_phone(self, value):
        if value and not E164.fullmatch(value):
            raise serializers.ValidationError("Use E.164 format, e.g. +14155550100.")
        if value and refusal(value):  # the clinic's sender never texts it (SMS pumping)
            raise serializers.ValidationError(f"{refusal(value)}.")
        return value

    def validate_timezone(self, value):
        if value not in TIMEZONES:
            raise serializers.ValidationError(f"{value!r} is not an IANA time zone, e.g. Europe/London.")
        return value

    def validate(self, attrs):
        password = attrs.get("password")
        if password:
            try:
                validate_password(password)
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"password": exc.messages}) from None
        # The sign-in email is the username: whoever holds only a token cannot move the account.
        new_email = attrs.get("email", getattr(self.instance, "email", "")) != getattr(self.instance, "email", "")
        if (password or new_email) and self.by_the_patient():
            if not self.instance.user.check_password(attrs.get("current_password", "")):
                what = "your password" if password else "your sign-in email"
                raise serializers.ValidationError(
                    {"current_password": [f"Give your current password to change {what}."]}
                )
        attrs.pop("current_password", None)
        # Every change of a sign-in email is checked, with or without a password: the email is
        # the username, and taking another account's would lock its owner out.
        owner = getattr(self.instance, "user_id", None)
        email = attrs.get("email", getattr(self.instance, "email", ""))
        if (password or owner) and username_taken(email, besides=owner):
            raise serializers.ValidationError({"email": [EMAIL_TAKEN]})
        return attrs

    def by_the_patient(self):
        request = self.context.get("request")
        user = getattr(self.instance, "user", None)
        return user is not None and request is not None and request.user.pk == user.pk

    def save(self, **kwargs):
        try:
            with transaction.atomic():
                return super().save(**kwargs)
        except IntegrityError:  # another request took the email between the check and the write
            raise serializers.ValidationError({"email": [EMAIL_TAKEN]}) from None

    def create(self, validated_data):
        password = validated_data.pop("password", None)
        patient = Patient.objects.create(**validated_data)
        if password:
            patient.user = get_user_model().objects.create_user(
                username=patient.email, email=patient.email, password=password
            )
            patient.save(update_fields=["user"])
        return patient

    def update(self, patient, validated_data):
        password = validated_data.pop("password", None)
        # A patient's own new email or phone waits for its code (the view sends it); staff's apply at once.
        self.contact_changes = {}
        if self.by_the_patient():
            for field in ("email", "phone"):
                value = validated_data.get(field)
                if value and value != getattr(patient, field):
                    self.contact_changes[field] = validated_data.pop(field)
        opted_out_before = set(patient.opted_out)
        patient = super().update(patient, validated_data)
        # As a STOP or START is announced: the clinic's systems hear of it however it was made.
        for channel in sorted(opted_out_before ^ set(patient.opted_out)):
            consent_changed.send(
                type(patient), patient_id=patient.pk, channel=channel, opted_out=channel in patient.opted_out
            )
        if patient.user_id:
            patient.user.username = patient.user.email = patient.email
            if password:
                patient.user.set_password(password)
            patient.user.save()
        return patient


def username_taken(email, besides=None):
    return get_user_model().objects.filter(username__iexact=email).exclude(pk=besides).exists()


class VisiblePatientField(serializers.PrimaryKeyRelatedField):
    """A patient the caller may see: another patient's id answers what an unknown id answers."""

    def get_queryset(self):
        return visible_patients(self.context["request"].user)


class AppointmentSerializer(serializers.ModelSerializer):
    patient = VisiblePatientField()
    provider = RecordName(Provider)
    location = RecordName(Location, required=False, allow_blank=True)
    starts_at = AwareDateTimeField(validators=[future])
    duration_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60)
    # The patient's, as on their own answers: a booking for someone we cannot reach says so.
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = Appointment
        fields = [
            "id",
            "patient",
            "provider",
            "starts_at",
            "duration_minutes",
            "location",
            "reason",
            "status",
            "cancel_reason",
            "created_at",
            "confirmed_at",
            "updated_at",
            "warnings",
        ]
        read_only_fields = ["status", "cancel_reason", "confirmed_at", "created_at", "updated_at"]

    def validate(self, attrs):
        check_horizon(attrs["starts_at"], attrs["patient"])
        return attrs

    @WARNINGS
    def get_warnings(self, appointment):
        return warnings_for(appointment.patient)


class RescheduleSerializer(serializers.Serializer):
    """The new time; context["patient"] is the appointment's patient, in whose zone it is checked."""

    starts_at = AwareDateTimeField(validators=[future])

    def validate(self, attrs):
        check_horizon(attrs["starts_at"], self.context["patient"])
        return attrs


class VerifyContactSerializer(serializers.Serializer):
    field = serializers.ChoiceField(choices=["email", "phone"])
    code = serializers.RegexField(r"^[0-9]{6}$", error_messages={"invalid": "Six digits, as sent."})


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
