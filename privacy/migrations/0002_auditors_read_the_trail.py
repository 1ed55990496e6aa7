from django.contrib.auth.management import create_permissions
from django.db import migrations

from appointments.roles import create_roles


def auditors_read_the_trail(apps, schema_editor):
    # Permissions are otherwise created after every migration has run (post_migrate): made here
    # first, so the Auditor group can hold view_accesslogentry and view_erasure.
    app_config = apps.get_app_config("privacy")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    create_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0001_initial"),
        ("appointments", "0010_patient_erased_at"),
    ]

    operations = [migrations.RunPython(auditors_read_the_trail, migrations.RunPython.noop)]
