from django.db import migrations

# Patients sign in with their email whatever its case (config/auth.py): two usernames that differ
# only in case would lock both out, so the database refuses the second one, whoever writes it.
INDEX = "auth_user_username_lower_uniq"


class Migration(migrations.Migration):
    dependencies = [
        ("appointments", "0002_idempotentrequest"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE UNIQUE INDEX {INDEX} ON auth_user (LOWER(username))",
            f"DROP INDEX {INDEX}",
        ),
    ]
