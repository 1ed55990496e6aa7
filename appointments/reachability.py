"""Whether a patient can be reached on each channel they chose: the `warnings` of the patient's
and the booking's answers, and the console's list of patients we cannot reach."""

from notifications.channels import CHANNELS, address_for

# Where a message goes when its own channel has no address (round 3's contract: email first).
FALLBACK = "email"


def _address_words(channel):
    return "email address" if channel == FALLBACK else "phone number"


def unaddressable_channels(patient):
    """The channels the patient chose, and has not opted out of, that they have no address for."""
    return [
        channel
        for channel in patient.channels
        if channel in CHANNELS and channel not in patient.opted_out and not address_for(patient, channel)
    ]


def reachable_by_fallback(patient):
    return FALLBACK not in patient.opted_out and bool(address_for(patient, FALLBACK))


def warnings_for(patient):
    """One `{channel, message}` for each chosen channel the patient cannot be reached on."""
    instead = "its messages go by email instead" if reachable_by_fallback(patient) else "nothing will be sent on it"
    return [
        {
            "channel": channel,
            "message": f"{CHANNELS[channel].label} was chosen but the patient has no {_address_words(channel)}: "
            f"{instead}.",
        }
        for channel in unaddressable_channels(patient)
    ]
