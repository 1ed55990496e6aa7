"""Domain events. Each is sent inside the transaction that changed the appointment, so a
receiver's writes commit or roll back with it. Arguments: appointment, occurred_at, and for a
reschedule previous_starts_at; a confirmation or a cancellation also says who made it (`by`, one of
By's values).

text_message_requested asks whoever sends text messages (notifications/) to send one now, outside
any appointment's notices (a verification code): arguments `to` and `text`; a receiver that
cannot send it raises TextNotSent.

consent_changed says a patient opted out of a channel or back in, however it happened (a reply,
Twilio's unsubscribe, an email complaint, the API): arguments `patient_id`, `channel`,
`opted_out` (True: the patient opted out of it).

patient_data_read says a request read patients' data (appointments/trail.py): arguments `request`,
`patient_ids` and `action`; privacy/ hears it and appends to the access trail."""

from django.dispatch import Signal

appointment_booked = Signal()
appointment_rescheduled = Signal()
appointment_cancelled = Signal()
appointment_confirmed = Signal()
text_message_requested = Signal()
patient_data_read = Signal()
consent_changed = Signal()


class TextNotSent(Exception):
    """The text message a receiver of text_message_requested was asked for could not be sent."""


class By:
    """Who confirmed or cancelled an appointment: the patient's SMS or WhatsApp reply, the signed
    link's page, the patient through the API, or staff."""

    REPLY = "reply"
    LINK = "link"
    PATIENT = "patient"
    STAFF = "staff"
