from django.db import migrations

from appointments.roles import create_roles_after_permissions_of


def grant(apps, schema_editor):
    create_roles_after_permissions_of(apps, "appointments", "integrations")


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_clinic_manager_webhook_permissions"),
        ("appointments", "0011_clinic"),
    ]

    # Undone, the groups keep what they hold: a clinic may have changed them.
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
