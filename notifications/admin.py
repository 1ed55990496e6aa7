"""The app's admin pages, registered from their rooms when Django's admin discovers this module."""

from notifications.messages import admin as message_admin  # noqa: F401  (templates, their preview and history)
from notifications.operations import admin as operations_admin  # noqa: F401  (rows, attempts, inbound, the dashboard)
