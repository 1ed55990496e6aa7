"""Log formatting: JSON lines in production, and phone numbers masked everywhere."""
import json
import logging
import re

PHONE = re.compile(r"\+\d{4,11}(\d{4})\b")
# Fields a record may carry through `extra=` (the delivery log line sets them).
EXTRA_FIELDS = ("notification_id", "appointment_id", "channel", "kind", "outcome", "attempt", "latency_ms", "error_code")


def mask_phone_numbers(text):
    return PHONE.sub(r"+…\1", text)


class MaskPhoneNumbers(logging.Filter):
    """No full phone number reaches a log: only its last four digits."""

    def filter(self, record):
        message = record.getMessage()
        masked = mask_phone_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
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
            line["exception"] = mask_phone_numbers(self.formatException(record.exc_info))
        return json.dumps(line, default=str)
