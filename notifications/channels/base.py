from dataclasses import dataclass

# The error code of a send whose outcome never came back (the provider did not answer, or the
# worker died mid-send): the message may have gone out, so its retry looks for it first.
UNANSWERED = "unanswered"


class DeliveryError(Exception):
    """A send that did not go through. Permanent errors are never retried."""

    def __init__(self, message, *, permanent, code=""):
        super().__init__(message)
        self.permanent = permanent
        self.code = str(code or "")


@dataclass(frozen=True)
class Message:
    text: str
    subject: str = ""
    html: str = ""


class Channel:
    """One way of reaching a patient. send() returns the provider's message id or raises
    DeliveryError; it is called with the row claimed, outside any transaction."""

    name = ""

    def send(self, notification, message):
        raise NotImplementedError
