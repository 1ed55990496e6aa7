"""Whether a patient can be reached on each channel they chose: the `warnings` of the patient's
and the booking's answers, and the console's list of patients we cannot reach.

appointments/ knows nothing of notifications/, so the patient's field each channel is addressed
by is named here; tests/operations/test_unreachable_warnings.py keeps it in step with the
channels' own addressing (notifications/channels: address_for)."""

# The field of the patient a channel's address comes from; in-app needs none (the patient is it).
ADDRESS_FIELD = {"email": "email", "sms": "phone", "whatsapp": "phone"}
# Channels as a warning names them (the same words as the channels' labels).
LABELS = {"email": "Email", "sms": "SMS", "whatsapp": "WhatsApp", "in_app": "In-app"}
# Where a message goes when its own channel has no address (round 3's contract: email first).
FALLBACK = "email"


def has_address(patient, channel):
    field = ADDRESS_FIELD.get(channel)
    return field is None or bool(getattr(patient, field))


def unaddressable_channels(patient):
    """The channels the patient chose, and has not opted out of, that they have no address for."""
    return [
        channel
        for channel in patient.channels
        if channel in LABELS and channel not in patient.opted_out and not has_address(patient, channel)
    ]


def warnings_for(patient):
    """One `{channel, message}` for each chosen channel the patient cannot be reached on."""
    by_fallback = FALLBACK not in patient.opted_out and has_address(patient, FALLBACK)
    instead = "its messages go by email instead" if by_fallback else "nothing will be sent on it"
    return [
        {
            "channel": channel,
            "message": f"{LABELS[channel]} was chosen but the patient has no "
            f"{'email address' if ADDRESS_FIELD[channel] == 'email' else 'phone number'}: {instead}.",
        }
        for channel in unaddressable_channels(patient)
    ]
