"""The trail of staff reads of patients' data, and the tombstones of erased patients."""

from django.db import models
from django.utils import timezone


class AppendOnly(Exception):
    """An entry of the access trail cannot be changed or deleted."""


class AccessLogQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("the access trail is append-only")

    def delete(self):
        raise AppendOnly("the access trail is append-only")


class AccessLogEntry(models.Model):
    """One staff read of a patient's data: who, when, which patient, what, from where. The patient
    is a plain number, not a foreign key, so the entry outlives the patient's erasure; the staff
    member is kept as text for the same reason."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user_id = models.IntegerField(null=True)
    username = models.CharField(max_length=150)
    patient_id = models.IntegerField(db_index=True)
    action = models.CharField(max_length=64)
    path = models.CharField(max_length=2048)
    remote_address = models.CharField(max_length=64, blank=True)

    objects = AccessLogQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "access log entries"

    def __str__(self):
        return f"{self.username} {self.action} patient {self.patient_id} at {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        # Written once: an entry already stored is never rewritten.
        if not self._state.adding:
            raise AppendOnly("the access trail is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("the access trail is append-only")


class Erasure(models.Model):
    """The tombstone of an erased patient: their id, when, by whom and why, and nothing else."""

    patient_id = models.IntegerField(unique=True)
    at = models.DateTimeField(default=timezone.now)
    by = models.CharField(max_length=150)
    reason = models.TextField()

    class Meta:
        ordering = ["-at"]

    def __str__(self):
        return f"patient {self.patient_id} erased by {self.by} at {self.at:%Y-%m-%d %H:%M}"
