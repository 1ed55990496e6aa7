from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

WHATSAPP_SESSION = timedelta(hours=24)


def default_language():
    return settings.LANGUAGE_CODE


class ContactChannel(models.TextChoices):
    """The ways a patient may choose to hear from the clinic (Patient.channels). The notifications
    app has a channel for each; its system check notifications.E010 says so at start-up."""

    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    IN_APP = "in_app", "In-app"


class Patient(models.Model):
    # Set when the patient may sign in (their email is the username).
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="patient"
    )
    name = models.CharField(max_length=200)
    email = models.EmailField()
    phone = models.CharField(max_length=16, blank=True, help_text="E.164, e.g. +14155550100")
    timezone = models.CharField(max_length=64, default="UTC")
    # A code among settings.LANGUAGES: every message to the patient is written in it.
    language = models.CharField(max_length=16, default=default_language)
    # The channels the patient chose, and those they have since opted out of.
    channels = models.JSONField(default=list)
    opted_out = models.JSONField(default=list, blank=True)
    # When the patient last wrote to us on WhatsApp: for 24 hours after it, WhatsApp lets the
    # clinic answer with free-form text; outside that window only approved templates go.
    whatsapp_last_inbound_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the patient's personal data was erased (privacy/erasure.py; privacy.Erasure keeps
    # who and why): an outcome written after it must not put a message's copy back.
    erased_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        # The data-rights actions, beyond the admin's view/add/change/delete.
        permissions = [
            ("export_patient", "Can export everything held about a patient"),
            ("erase_patient", "Can erase a patient's personal data"),
        ]

    def __str__(self):
        return self.name

    def whatsapp_session_open(self, now=None):
        """Whether WhatsApp's 24-hour customer service window, opened by the patient's last
        message to us, still lets free-form text through."""
        last = self.whatsapp_last_inbound_at
        return last is not None and (now or timezone.now()) - last < WHATSAPP_SESSION


class Provider(models.Model):
    """A clinician staff keep on record. A booking names one, so what goes out from the clinic's
    sender as the provider is always the clinic's own words, never a patient's."""

    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="provider_name_unique_any_case")]

    def __str__(self):
        return self.name


class Location(models.Model):
    """A place staff keep on record, named by a booking like a provider."""

    name = models.CharField(max_length=200)
    address = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="location_name_unique_any_case")]

    def __str__(self):
        return self.name


class AppointmentStatus(models.TextChoices):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class Appointment(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="appointments")
    # The names of a Provider and a Location as booked (the API takes only names on record); kept
    # as text so a record renamed later does not rewrite what the patient was told.
    provider = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    duration_minutes = models.PositiveIntegerField(default=30)
    location = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=16, choices=AppointmentStatus.choices, default=AppointmentStatus.SCHEDULED)
    cancel_reason = models.CharField(max_length=500, blank=True)
    # The calendar invitation's SEQUENCE: every move or cancellation raises it, so the
    # patient's calendar takes the newest invitation over an older one that arrives late.
    sequence = models.PositiveIntegerField(default=0, editable=False)
    # Set once, when the patient confirms (a reply to a reminder, or the confirm endpoint).
    confirmed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at"]

    def __str__(self):
        return f"{self.patient} with {self.provider} at {self.starts_at:%Y-%m-%d %H:%M}"


class IdempotentRequest(models.Model):
    """The first successful answer to a request sent with an Idempotency-Key header.

    Written in the transaction of the request's own work, so the key and the booking (or
    reschedule, or cancellation) commit together; the unique (user, key) makes a racing
    duplicate wait for the first and then replay its answer. See appointments/idempotency.py."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2048)
    # SHA-256 of the canonical JSON of the parsed body.
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_once_per_user")]

    def __str__(self):
        return f"{self.method} {self.path} with key {self.key!r}"


class ContactChange(models.Model):
    """A patient's own new email or phone, waiting for the code sent to it (appointments/contact.py).
    Until it is confirmed every message goes to the old address."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="contact_changes")
    field = models.CharField(max_length=8, choices=[("email", "email"), ("phone", "phone")])
    value = models.CharField(max_length=254)
    # An HMAC of the code, never the code itself.
    code_digest = models.CharField(max_length=64)
    attempts = models.PositiveSmallIntegerField(default=0)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patient", "field"], name="one_contact_change_per_field")]

    def __str__(self):
        return f"{self.patient}: {self.field} to be {self.value}"


class ContactCodeSent(models.Model):
    """One verification code sent (appointments/contact.py): what the hourly and daily allowances
    count, per patient and per destination, with the wrong guesses made against it, so a new
    code brings no new guesses. /metrics counts today's by channel."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    field = models.CharField(max_length=8, choices=[("email", "email"), ("phone", "phone")])
    destination = models.CharField(max_length=254, db_index=True)
    sent_at = models.DateTimeField(default=timezone.now, db_index=True)
    wrong_guesses = models.PositiveSmallIntegerField(default=0)

    def __str__(self):
        return f"code for {self.patient} by {self.field} at {self.sent_at:%Y-%m-%d %H:%M}"


class PatientChange(models.Model):
    """A reschedule or cancellation a patient made themselves: what their daily allowance
    (PATIENT_CHANGES_PER_DAY, appointments/allowance.py) counts."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=16)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self):
        return f"{self.patient} {self.action} at {self.at:%Y-%m-%d %H:%M}"


class Clinic(models.Model):
    """The clinic's identity as patients see it (emails, the appointment's page): one record,
    edited by staff in the admin; until they do, the name is CLINIC_NAME's."""

    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=32, blank=True, help_text="As patients should dial it, e.g. +44 20 7946 0000")
    address = models.TextField(blank=True, help_text="The postal address, as it should appear in emails")
    logo_url = models.URLField(blank=True, help_text="An https image URL for emails (optional)")
    website = models.URLField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "clinic"

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        self.pk = 1  # one clinic: the singleton's row
        super().save(*args, **kwargs)

    @classmethod
    def current(cls):
        """The clinic's record (made from CLINIC_NAME the first time it is asked for)."""
        clinic = cls.objects.filter(pk=1).first()
        return clinic or cls(pk=1, name=settings.CLINIC_NAME)
