"""Beat's scheduler: django-celery-beat's DatabaseScheduler, with the database owning the schedule.

The stock scheduler writes settings' CELERY_BEAT_SCHEDULE over the database at every start, so an
operator's change in the admin is silently lost when beat restarts, and two tasks with the same
interval share one schedule record, so editing one moves both. Here settings only seed the
entries that do not exist yet, each with a schedule record of its own."""

from celery import schedules
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry


class SeededEntry(ModelEntry):
    @classmethod
    def from_entry(cls, name, app=None, **entry):
        task = PeriodicTask._default_manager.filter(name=name).first()
        if task is None:
            task = PeriodicTask._default_manager.create(name=name, **cls._unpack_fields(**entry))
        return cls(task, app=app)

    @classmethod
    def to_model_schedule(cls, schedule):
        schedule = schedules.maybe_schedule(schedule)
        for schedule_type, model_type, model_field in cls.model_schedules:
            if isinstance(schedule, schedule_type):
                model_schedule = model_type.from_schedule(schedule)
                # A new record even when an equal one exists, so no two tasks share a schedule.
                if model_type._meta.unique_together:
                    model_schedule.save()  # solar events are unique by definition; they are shared
                else:
                    model_schedule.pk = None
                    model_schedule._state.adding = True
                    model_schedule.save()
                return model_schedule, model_field
        raise ValueError(f"Cannot convert schedule type {schedule!r} to model")


class SeedingDatabaseScheduler(DatabaseScheduler):
    Entry = SeededEntry
