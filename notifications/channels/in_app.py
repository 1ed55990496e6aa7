from .base import Channel


class InAppChannel(Channel):
    """The row itself is the message: once sent it shows in the patient's inbox."""

    name = "in_app"
    label = "In-app"

    def address_for(self, patient):
        return f"patient:{patient.pk}"

    def send(self, notification, message, connection=None):
        return f"in_app:{notification.pk}"
