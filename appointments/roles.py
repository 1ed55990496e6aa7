"""The roles a clinic has, shipped as groups by a data migration (appointments 0008): which of
Django's model permissions each holds. The API and the admin check the same permissions."""

FRONT_DESK = "Front desk"
CLINIC_MANAGER = "Clinic manager"
AUDITOR = "Auditor"

# The apps whose every record the auditor reads (privacy: the access trail and the erasures;
# integrations: the clinic's webhook endpoints and what was sent to them).
AUDITED_APPS = ("appointments", "notifications", "privacy", "integrations")


def crud(app_label, model, *verbs):
    return [f"{app_label}.{verb}_{model}" for verb in verbs]


FRONT_DESK_PERMISSIONS = [
    *crud("appointments", "patient", "view", "add", "change"),
    *crud("appointments", "appointment", "view", "add", "change"),
    # A booking names a provider and a location kept by the manager.
    *crud("appointments", "provider", "view"),
    *crud("appointments", "location", "view"),
    *crud("notifications", "notification", "view"),
    *crud("notifications", "notificationattempt", "view"),
    *crud("notifications", "inboundmessage", "view"),
]

CLINIC_MANAGER_PERMISSIONS = [
    *FRONT_DESK_PERMISSIONS,
    *crud("appointments", "provider", "add", "change", "delete"),
    *crud("appointments", "location", "add", "change", "delete"),
    # The clinic's identity on every email (name, phone, address, logo).
    *crud("appointments", "clinic", "view", "change"),
    *crud("notifications", "messagetemplate", "view", "add", "change", "delete", "preview", "restore"),
    *crud("notifications", "messagetemplaterevision", "view"),
    "notifications.retry_notification",
    # The admin's "Cancel selected notifications still to go out".
    "notifications.change_notification",
    # The clinic's webhook endpoints (the API and the admin), and re-driving a dead delivery.
    *crud("integrations", "webhookendpoint", "view", "add", "change", "delete"),
    *crud("integrations", "webhookdelivery", "view"),
    "integrations.retry_webhookdelivery",
]


def create_roles(apps):
    """Create the three groups if missing and give them their permissions (added, so a clinic's
    own additions to a group stay). `apps` is a migration's historical registry or django.apps."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    def permissions(names):
        wanted = {tuple(name.split(".")) for name in names}
        found = Permission.objects.filter(
            content_type__app_label__in={app for app, _ in wanted}, codename__in={code for _, code in wanted}
        ).values_list("pk", "content_type__app_label", "codename")
        return [pk for pk, app, code in found if (app, code) in wanted]

    viewing = Permission.objects.filter(content_type__app_label__in=AUDITED_APPS, codename__startswith="view_")
    grants = {
        FRONT_DESK: permissions(FRONT_DESK_PERMISSIONS),
        CLINIC_MANAGER: permissions(CLINIC_MANAGER_PERMISSIONS),
        AUDITOR: list(viewing.values_list("pk", flat=True)),
    }
    for name, pks in grants.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*pks)


def create_roles_after_permissions_of(apps, *app_labels):
    """create_roles() in a data migration of an app whose models bring permissions a role holds.
    Django otherwise creates permissions after every migration has run (post_migrate): they are
    made here first, for these apps, so the groups can hold them on a fresh database."""
    from django.contrib.auth.management import create_permissions

    for label in app_labels:
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    create_roles(apps)
