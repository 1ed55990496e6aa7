"""What Twilio's error codes (and our own codes for text messages) mean, in words staff read
on the dashboard. How each is handled lives where it is decided: twilio_backend.py classifies a
refused send, receipts.py acts on a failed receipt, consent.py on an unsubscribed recipient."""

from .base import UNANSWERED

# https://www.twilio.com/docs/api/errors
MEANINGS = {
    "20003": "Twilio refused our credentials (account SID or auth token)",
    "20429": "Too many requests to Twilio at once",
    "21211": "The 'To' number is not a valid phone number",
    "21408": "Sending to this region is not enabled on the Twilio account",
    "21610": "The recipient texted STOP to our number (unsubscribed)",
    "21612": "The 'To' number cannot be reached from our number",
    "21614": "The 'To' number is not a mobile number",
    "21655": "Unknown or unapproved WhatsApp Content Template (ContentSid)",
    "21656": "The WhatsApp template's variables (ContentVariables) are invalid",
    "30003": "Unreachable handset (switched off or out of coverage)",
    "30004": "Message blocked by the recipient or their carrier",
    "30005": "Unknown number: it does not exist at the carrier",
    "30006": "Landline or a carrier that cannot take text messages",
    "30007": "Filtered by the carrier as spam",
    "30008": "Unknown error from the carrier",
    "63016": "WhatsApp free-form text outside the 24-hour window: a template is needed",
    "63024": "Invalid WhatsApp recipient",
    "session_closed": "Not sent: no WhatsApp template for this kind, and no 24-hour session",
    UNANSWERED: "Twilio did not answer in time (the message may have gone out)",
    "config": "No Twilio sender number is configured",
}


def meaning(code):
    return MEANINGS.get(str(code), "See https://www.twilio.com/docs/api/errors/" + str(code) if code else "")


# The same, in the few words a patient's story and the console put after "Twilio:".
SHORT_MEANINGS = {
    "21211": "not a valid phone number",
    "21610": "the patient texted STOP (unsubscribed)",
    "21612": "cannot be reached from our number",
    "21614": "not a mobile number",
    "30003": "handset unreachable",
    "30004": "blocked by the recipient or their carrier",
    "30005": "unknown number",
    "30006": "a landline, or a carrier that takes no texts",
    "30007": "filtered as spam",
    "63016": "outside WhatsApp's 24-hour window",
    "63024": "not a WhatsApp number",
}


def short_meaning(code):
    code = str(code or "")
    return SHORT_MEANINGS.get(code) or meaning(code) or "no reason given"
