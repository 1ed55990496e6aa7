"""Own identity (issue 27): when a row's send started, and one row per provider message."""

from django.db import migrations, models
from django.db.models import Count, Min


def start_of_possibly_sent_rows(apps, schema_editor):
    """A row already possibly sent looks for its message from its first claim (its attempts'
    earliest start, else its claim), never from its booking."""
    Notification = apps.get_model("notifications", "Notification")
    rows = Notification.objects.filter(possibly_sent=True, send_started_at__isnull=True)
    for row in rows.annotate(first_claim=Min("attempt_log__started_at")).iterator():
        started = row.first_claim or row.claimed_at
        if started is not None:
            Notification.objects.filter(pk=row.pk).update(send_started_at=started)


def one_row_per_provider_message(apps, schema_editor):
    """Rows that share a provider message (a look-up that took another row's message) keep it
    on the first sent; the others lose the sid, with the reason in last_error for staff."""
    Notification = apps.get_model("notifications", "Notification")
    shared = (
        Notification.objects.exclude(provider_message_id="")
        .values("provider_message_id")
        .annotate(rows=Count("id"))
        .filter(rows__gt=1)
        .values_list("provider_message_id", flat=True)
    )
    for sid in list(shared):
        owner, *others = Notification.objects.filter(provider_message_id=sid).order_by("sent_at", "id")
        for row in others:
            row.provider_message_id = ""
            row.last_error = (
                f"recorded with the message of notification {owner.pk} ({sid}); this one may never have "
                "reached the patient"
            )
            row.save(update_fields=["provider_message_id", "last_error"])


class Migration(migrations.Migration):
    dependencies = [
        ("appointments", "0007_contact_change"),
        ("notifications", "0008_attempt_finished_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="send_started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(start_of_possibly_sent_rows, migrations.RunPython.noop),
        migrations.RunPython(one_row_per_provider_message, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="notification",
            name="provider_message_id",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.UniqueConstraint(
                condition=models.Q(("provider_message_id", ""), _negated=True),
                fields=("provider_message_id",),
                name="notification_provider_message_once",
            ),
        ),
    ]
