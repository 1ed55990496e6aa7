"""Contact details as lists show them: enough to tell patients apart, not enough to read off a
screen (+…0123, g***@example.com). A patient's own page shows them whole."""

from config.logging import mask_phone_numbers


def mask_email(address):
    local, at, domain = (address or "").partition("@")
    if not at:
        return mask_phone_numbers(address or "")
    return f"{local[:1]}***@{domain}"


def mask_recipient(recipient):
    """A row's recipient, whatever its channel: an email, a phone, whatsapp:+… or patient:N."""
    return mask_email(recipient) if "@" in (recipient or "") else mask_phone_numbers(recipient or "")


def mask_name(name):
    """First name and the initials of the rest: Grace Hopper -> Grace H."""
    first, *rest = (name or "").split()
    return " ".join([first, *(f"{part[0]}." for part in rest)]) if first else ""
