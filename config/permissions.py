"""The API's one permission rule, the admin's: staff act by Django's model permissions; patients
(accounts that are not staff) only through the actions a view opens to them, on their own rows."""

from rest_framework.permissions import DjangoModelPermissions

VIEW = ["%(app_label)s.view_%(model_name)s"]


class ModelPermissions(DjangoModelPermissions):
    """A staff account needs view_* to read (DRF's class lets any read through), add_* to create,
    change_* to edit, delete_* to delete, or the named permissions of a view's own actions
    (`action_permissions`); a patient may do what the view's `patient_actions` lists (a viewset's
    actions, a plain view's methods), on the rows its queryset shows them."""

    perms_map = {**DjangoModelPermissions.perms_map, "GET": VIEW, "HEAD": VIEW, "OPTIONS": VIEW}

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        # A viewset's action, or a plain view's method.
        action = getattr(view, "action", None) or request.method
        if not user.is_staff:
            return action in getattr(view, "patient_actions", ())
        named = getattr(view, "action_permissions", {}).get(action)
        if named is not None:
            return user.has_perms(named)
        return super().has_permission(request, view)
