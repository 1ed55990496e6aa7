from django.contrib.auth.management import create_permissions
from django.db import migrations

from appointments.roles import create_roles


def grant(apps, schema_editor):
    # Permissions are otherwise made after every migration (post_migrate): made here first, for
    # this app, so the Clinic manager group can hold them on a fresh database.
    app_config = apps.get_app_config("integrations")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    create_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_webhooks"),
        ("appointments", "0008_roles_front_desk_manager_auditor"),
    ]

    # Undone, the groups keep what they hold: a clinic may have changed them.
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
