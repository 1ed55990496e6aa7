import logging
import smtplib
import uuid
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends import console, smtp

from . import mime
from .base import Channel, DeliveryError

logger = logging.getLogger(__name__)

# The row's id in the message's anymail metadata, which an email service echoes in its webhooks:
# a report on an email whose outcome is not written yet (or never will be) still finds its row.
NOTIFICATION_METADATA = "notification"


class ConsoleEmailBackend(console.EmailBackend):
    """EMAIL_BACKEND=console: each email logged at INFO, as the message Django's console backend
    prints, so that every process shows it alike (a worker would log its printed output at
    WARNING) and the log's filter masks phone numbers in it."""

    def write_message(self, message):
        logger.info("email to %s:\n%s", ", ".join(message.recipients()), message.message().as_string())


def sender_domain():
    """The domain of DEFAULT_FROM_EMAIL ('' when it has none)."""
    return settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">")


class EmailChannel(Channel):
    """Django's email machinery: a plain-text body with an HTML alternative, on a connection
    (EMAIL_BACKEND's) that a send thread keeps open for its batch. Over SMTP (SMTPBackend) the
    message goes on the wire as mime.py writes it."""

    name = "email"
    label = "Email"
    provider = "email"

    def address_for(self, patient):
        return patient.email

    def connect(self):
        return get_connection()

    def send(self, notification, message, connection=None):
        # The row's id in the Message-ID, as a text message's status callback URL carries it: what
        # left for a recipient can be tied to the row that sent it (a bounce, the simulation's checks).
        message_id = make_msgid(idstring=f"notification-{notification.pk}", domain=sender_domain() or None)
        email = email_message(notification.recipient, message, message_id, connection)
        email.metadata = {NOTIFICATION_METADATA: str(notification.pk)}  # read by anymail's backends only
        try:
            if connection is not None:
                # Opened here, not by send(): a connection send() opens it also closes.
                connection.open()
            email.send()
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            raise _smtp_error(code, reason) from exc
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(exc.smtp_code, exc.smtp_error) from exc
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {exc}", permanent=False) from exc
        # An email service through anymail knows the message by its own id (its webhooks name it).
        status = getattr(email, "anymail_status", None)
        if status is not None and status.message_id is not None:
            return str(status.message_id).strip("<>")
        return message_id.strip("<>")


def email_message(recipient, message, message_id, connection=None):
    """The Django email of a Message: what it says, whichever backend sends it."""
    email = _EmailMessage(
        subject=message.subject,
        body=message.text,
        to=[recipient],
        headers={"Message-ID": message_id},
        connection=connection,
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    if message.calendar:
        # An alternative part, as calendar clients look for it: text/calendar; method=REQUEST.
        email.attach_alternative(message.calendar, f"text/calendar; method={message.calendar_method}")
    return email


class _EmailMessage(EmailMultiAlternatives):
    # UTF-8 whatever DEFAULT_CHARSET says, as mime.py writes it, so Django's own build agrees.
    encoding = "utf-8"

    def message(self):
        """Django's message with its MIME boundaries chosen here, at random: left unset, the
        email package picks one and compiles a regular expression to check it against the
        text, which cost a fifth of building the message."""
        message = super().message()
        for part in message.walk():
            if part.is_multipart() and part.get_boundary() is None:
                part.set_boundary(f"=={uuid.uuid4().hex}==")
        return message


class SMTPBackend(smtp.EmailBackend):
    """Django's SMTP backend (EMAIL_BACKEND=smtp) but that it puts the email channel's messages
    on the wire as mime.py writes them, not through Django's MIME classes; any other message it
    sends as Django does."""

    def _send(self, message):
        if not isinstance(message, _EmailMessage):
            return super()._send(message)
        try:
            self.connection.sendmail(*mime.envelope_and_bytes(message))
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True


def _smtp_error(code, reason):
    """SMTP replies 4xx are temporary, 5xx permanent, but for refused authentication (530,
    535): the operator's to fix, so retried."""
    if isinstance(reason, bytes):
        reason = reason.decode(errors="replace")
    return DeliveryError(f"SMTP {code}: {reason}", permanent=500 <= code < 600 and code not in (530, 535), code=code)
