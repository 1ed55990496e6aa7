from django.db import migrations

from appointments.roles import create_roles_after_permissions_of


def grant(apps, schema_editor):
    create_roles_after_permissions_of(apps, "integrations")


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_webhooks"),
        ("appointments", "0008_roles_front_desk_manager_auditor"),
    ]

    # Undone, the groups keep what they hold: a clinic may have changed them.
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
