from django.db import migrations

from appointments.roles import create_roles_after_permissions_of


def auditors_read_the_trail(apps, schema_editor):
    create_roles_after_permissions_of(apps, "privacy")


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0001_initial"),
        ("appointments", "0010_patient_erased_at"),
    ]

    operations = [migrations.RunPython(auditors_read_the_trail, migrations.RunPython.noop)]
