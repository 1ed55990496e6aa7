"""Log formatting: JSON lines in production, and phone numbers masked everywhere."""

import json
import logging
import re

# A number as written (+14155550123) or URL-encoded in a query string (%2B14155550123).
PHONE = re.compile(r"(?:\+|%2B)\d{4,11}(\d{4})\b", re.IGNORECASE)
# Fields a record may carry through `extra=` (the delivery log line sets them).
EXTRA_FIELDS = (
    "notification_id",
    "appointment_id",
    "channel",
    "kind",
    "outcome",
    "attempt",
    "latency_ms",
    "error_code",
    "provider_message_id",
)


def mask_phone_numbers(text):
    return PHONE.sub(r"+…\1", text)


class MaskPhoneNumbers(logging.Filter):
    """No full phone number reaches a log: only its last four digits."""

    def filter(self, record):
        message = record.getMessage()
        masked = mask_phone_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
        # A traceback can carry a number too (an exception's message). Formatters reuse a
        # record's exc_text once set, so setting it masked here covers every format.
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phone_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_phone_numbers(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: getattr(record, name) for name in EXTRA_FIELDS if hasattr(record, name)})
        if record.exc_info:
            line["exception"] = mask_phone_numbers(record.exc_text or self.formatException(record.exc_info))
        return json.dumps(line, default=str)
