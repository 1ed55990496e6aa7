from django.db import migrations

from appointments.roles import create_roles_after_permissions_of


def ship_roles(apps, schema_editor):
    create_roles_after_permissions_of(apps, "appointments", "notifications")


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
