from dataclasses import dataclass, field

# The error code of a send the provider did not answer in time.
UNANSWERED = "unanswered"


class DeliveryError(Exception):
    """A send that did not go through. Permanent errors are never retried. possibly_sent: the
    request may have reached the provider (no answer came back), so the message may be out."""

    def __init__(self, message, *, permanent, code="", possibly_sent=False):
        super().__init__(message)
        self.permanent = permanent
        self.code = str(code or "")
        self.possibly_sent = possibly_sent


@dataclass(frozen=True)
class Message:
    text: str
    subject: str = ""
    html: str = ""
    # An email's calendar invitation (iCalendar text) and its METHOD (REQUEST or CANCEL).
    calendar: str = ""
    calendar_method: str = ""
    # A WhatsApp Content Template's variables ("1": patient_name, … "6": clinic_name).
    variables: dict = field(default_factory=dict)


class Channel:
    """One way of reaching a patient. A channel owns its addressing (address_for) and its
    provider's errors, translated to DeliveryError in its own module. send() returns the
    provider's message id or raises DeliveryError; it is called with the row claimed, outside
    any transaction, with the connection connect() made for this send thread and batch (see
    SendSession)."""

    name = ""
    label = ""
    # The provider whose send rate limit this channel shares (notifications/outbox/ratelimit.py), if any.
    provider = None

    def address_for(self, patient):
        """Where this patient's messages go on this channel, or '' when the patient has none."""
        raise NotImplementedError

    def connect(self):
        """A connection to the provider, not yet opened, with a close() method; None when the
        channel keeps none of its own."""
        return None

    def send(self, notification, message, connection=None):
        raise NotImplementedError

    def means_unsubscribed(self, error_code):
        """Whether the provider refused the send because the recipient unsubscribed."""
        return False
