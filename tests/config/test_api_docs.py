"""The API docs page works on a closed network: every asset it loads is served by the service."""

import re
import urllib.request


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode(errors="replace")


def test_api_docs_load_every_asset_from_the_service_itself(live_server):
    status, page = fetch(f"{live_server.url}/api/docs/")
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)

    assert status == 200
    assert assets, "the page should load Swagger UI's script and style"
    assert [url for url in assets if not url.startswith("/")] == []
    assert {url: fetch(f"{live_server.url}{url}")[0] for url in assets} == {url: 200 for url in assets}


def test_the_schema_says_how_to_send_a_token():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    bookings = schema["paths"]["/api/appointments/"]["post"]

    assert schema["components"]["securitySchemes"]["knoxApiToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }
    assert {"knoxApiToken": []} in bookings["security"]
