"""Nobody silently unreachable: a patient's create or update, and a booking, still succeed when a
chosen channel has no address, but their answers carry `warnings` naming the channel and what
will happen instead."""

from tests.conftest import booking

SMS = {
    "channel": "sms",
    "message": "SMS was chosen but the patient has no phone number: its messages go by email instead.",
}
WHATSAPP = {
    "channel": "whatsapp",
    "message": "WhatsApp was chosen but the patient has no phone number: its messages go by email instead.",
}


def new_patient(**fields):
    return {"name": "Alan Turing", "email": "alan@example.com", "timezone": "Europe/London", **fields}


def test_a_patient_with_no_phone_for_text_channels_is_saved_with_warnings(staff_client):
    response = staff_client.post(
        "/api/patients/", new_patient(channels=["sms", "email", "whatsapp"], phone=""), format="json"
    )

    assert response.status_code == 201, response.data
    assert response.data["warnings"] == [SMS, WHATSAPP]


def test_a_reachable_patient_has_no_warnings(staff_client):
    response = staff_client.post(
        "/api/patients/", new_patient(channels=["sms", "email"], phone="+14155550100"), format="json"
    )

    assert response.status_code == 201 and response.data["warnings"] == []


def test_an_update_that_removes_the_phone_warns(staff_client, make_patient):
    patient = make_patient(channels=["sms", "email"], phone="+14155550100")

    response = staff_client.patch(f"/api/patients/{patient.pk}/", {"phone": ""}, format="json")

    assert response.status_code == 200 and response.data["warnings"] == [SMS]


def test_a_channel_opted_out_of_needs_no_address(staff_client, make_patient):
    patient = make_patient(channels=["sms", "email"], phone="")

    response = staff_client.patch(f"/api/patients/{patient.pk}/", {"opted_out": ["sms"]}, format="json")

    assert response.status_code == 200 and response.data["warnings"] == []


def test_with_email_opted_out_too_nothing_goes(staff_client, make_patient):
    patient = make_patient(channels=["sms", "email"], phone="")

    response = staff_client.patch(f"/api/patients/{patient.pk}/", {"opted_out": ["email"]}, format="json")

    assert response.data["warnings"] == [
        {"channel": "sms", "message": "SMS was chosen but the patient has no phone number: nothing will be sent on it."}
    ]


def test_a_booking_for_an_unreachable_patient_succeeds_with_warnings(staff_client, clinic, make_patient):
    patient = make_patient(channels=["sms", "email"], phone="")

    response = staff_client.post("/api/appointments/", booking(patient), format="json")

    assert response.status_code == 201, response.data
    assert response.data["warnings"] == [SMS]


def test_the_patient_admin_says_so_too(admin_client):
    form = {
        "name": "Alan Turing",
        "email": "alan@example.com",
        "phone": "",
        "timezone": "Europe/London",
        "language": "en",
        "channels": ["sms", "email"],
        "opted_out": [],
        # The patient page's inline of inbound messages, empty.
        "inbound_messages-TOTAL_FORMS": "0",
        "inbound_messages-INITIAL_FORMS": "0",
    }

    response = admin_client.post("/admin/appointments/patient/add/", form, follow=True)

    assert [str(m) for m in response.context["messages"] if m.level_tag == "warning"] == [SMS["message"]]


def test_the_address_fields_agree_with_the_channels_own_addressing():
    from appointments.models import Patient
    from appointments.reachability import LABELS, has_address
    from notifications.channels import CHANNELS, address_for

    nobody = Patient(pk=1, name="Nobody", email="", phone="", channels=list(CHANNELS))
    assert set(LABELS) == set(CHANNELS)
    assert {name: channel.label for name, channel in CHANNELS.items()} == LABELS
    for channel in CHANNELS:
        assert has_address(nobody, channel) == bool(address_for(nobody, channel)), channel
