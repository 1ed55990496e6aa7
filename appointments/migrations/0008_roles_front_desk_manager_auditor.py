from django.contrib.auth.management import create_permissions
from django.db import migrations

from appointments.roles import create_roles


def ship_roles(apps, schema_editor):
    # Permissions are otherwise created after every migration has run (post_migrate): made here
    # first, for these apps, so the groups can hold them on a fresh database.
    for label in ("appointments", "notifications"):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    create_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("appointments", "0007_contact_change"),
        ("notifications", "0010_permissions_retry_preview_restore"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="patient",
            options={
                "permissions": [
                    ("export_patient", "Can export everything held about a patient"),
                    ("erase_patient", "Can erase a patient's personal data"),
                ]
            },
        ),
        # Undone, the groups stay: a clinic may have put people in them.
        migrations.RunPython(ship_roles, migrations.RunPython.noop),
    ]
