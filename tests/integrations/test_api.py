"""GET, POST /api/webhook-endpoints/ and DELETE /api/webhook-endpoints/{id}/ (DESIGN, round 3)."""

import base64

import pytest

from integrations.models import WebhookEndpoint
from tests.conftest import in_role, token_client

URL = "/api/webhook-endpoints/"


def test_a_manager_registers_an_endpoint_and_sees_its_secret_once(staff_client):
    answer = staff_client.post(
        URL,
        {"url": "https://ehr.example/hooks", "events": ["appointment.confirmed", "patient.opted_out"]},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert set(body) == {"id", "url", "events", "secret", "created_at"}
    assert body["events"] == ["appointment.confirmed", "patient.opted_out"]
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 32
    assert WebhookEndpoint.objects.get().secret == body["secret"]

    listed = staff_client.get(URL).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [row["url"] for row in rows] == ["https://ehr.example/hooks"]
    assert "secret" not in rows[0]

    assert staff_client.delete(f"{URL}{body['id']}/").status_code == 204
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://ehr.example/hooks", "events": ["appointment.booked"]}, "events"),
        ({"url": "https://ehr.example/hooks", "events": []}, "events"),
        ({"url": "not a url", "events": ["notification.dead"]}, "url"),
        ({"events": ["notification.dead"]}, "url"),
    ],
)
def test_bad_input_is_400_naming_the_field(staff_client, body, field):
    answer = staff_client.post(URL, body, format="json")
    assert answer.status_code == 400 and field in answer.json()


def test_production_takes_https_endpoints_only(staff_client, settings):
    settings.PRODUCTION = True
    answer = staff_client.post(URL, {"url": "http://ehr.example/hooks", "events": ["notification.dead"]}, format="json")
    assert answer.status_code == 400 and "url" in answer.json()


@pytest.mark.parametrize("role", [None, "Front desk", "Auditor"])
def test_only_the_clinic_manager_registers_endpoints(staff_user, role):
    client = token_client(in_role(staff_user, role) if role else staff_user)
    answer = client.post(URL, {"url": "https://ehr.example/hooks", "events": ["notification.dead"]}, format="json")
    assert answer.status_code == 403


def test_a_patient_cannot_see_or_register_endpoints(patient_client):
    assert patient_client.get(URL).status_code == 403
    body = {"url": "https://evil.example/", "events": ["notification.dead"]}
    assert patient_client.post(URL, body, format="json").status_code == 403
