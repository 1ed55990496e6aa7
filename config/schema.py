"""The OpenAPI schema documents every status an operation can answer, with its body, so a client
generated from /api/schema/ reads a field error instead of raising "unexpected status".

Every operation gets, unless its view documents the status itself, the errors that DRF and our
views answer: 400 (the field-error object) where a body or a query is parsed; 401 and 403 (a
`detail`) where a sign-in is needed; 404 where a path names a row or a list can be paged past
its end; 409 and 422 where an Idempotency-Key is accepted; 415 where a body is parsed; 429 with
`Retry-After` where the view throttles. Two shared components carry the bodies: `FieldErrors`
and `Detail`. A view that can answer more (a reschedule's 409) names the status in its
@extend_schema as `409: None`, and gets the shared body too."""

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers
from rest_framework.permissions import AllowAny

FIELD_ERRORS = {
    "type": "object",
    "description": (
        "Each key names what was refused (a field, `non_field_errors`, a header such as "
        "`Idempotency-Key`, or `detail` for a body that is not JSON) and holds its messages."
    ),
    "additionalProperties": {},
}
DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
DESCRIPTIONS = {
    "400": "A field is refused; the body names it.",
    "401": "No valid `Authorization: Token <key>` (or session).",
    "403": "Signed in, but not allowed this.",
    "404": "Not found, or not yours (the same answer).",
    "409": "The request conflicts with the row's state, or a request with this Idempotency-Key is in progress.",
    "415": "The body is not JSON (or a form).",
    "422": "This Idempotency-Key was used for another request.",
    "429": "Too many requests; `Retry-After` says when to try again.",
}
BODIES = {"400": "FieldErrors", "409": "FieldErrors", "422": "FieldErrors"}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}
IDEMPOTENCY_HEADER = "Idempotency-Key"
NOT_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"


class TokenScheme(KnoxTokenScheme):
    """Our knox subclass (accounts/authentication.py) is documented as knox's own scheme."""

    target_class = "accounts.authentication.TokenAuthentication"


class AutoSchema(SpectacularAutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction == "request" and type(field) is serializers.CharField and not field.allow_blank:
            # DRF strips the text and refuses it blank or with a NUL: at least one other character.
            schema.setdefault("pattern", NOT_BLANK)
        return schema

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in responses.items():
            if code >= "400" and "content" not in response:  # named by the view as `code: None`
                responses[code] = self.error_response(code)
        for code in self.error_statuses():
            responses.setdefault(code, self.error_response(code))
        return responses

    def error_statuses(self):
        codes = []
        has_body = self.method in ("POST", "PUT", "PATCH")
        if has_body or self._get_parameters():
            codes.append("400")
        if not self.allows_anyone():
            codes += ["401", "403"]
        if "{" in self.path or self._is_list_view():
            codes.append("404")
        if self.accepts_idempotency_key():
            codes += ["409", "422"]
        if has_body:
            codes.append("415")
        if self.view.get_throttles():
            codes.append("429")
        return codes

    def allows_anyone(self):
        return all(isinstance(permission, AllowAny) for permission in self.view.get_permissions())

    def accepts_idempotency_key(self):
        return any(getattr(p, "name", None) == IDEMPOTENCY_HEADER for p in self.get_override_parameters())

    def error_response(self, code):
        name = BODIES.get(code, "Detail")
        component = ResolvedComponent(
            name=name,
            type=ResolvedComponent.SCHEMA,
            object=name,
            schema=FIELD_ERRORS if name == "FieldErrors" else DETAIL,
        )
        self.registry.register_on_missing(component)
        response = {"description": DESCRIPTIONS[code], "content": {"application/json": {"schema": component.ref}}}
        if code == "429":
            response["headers"] = RETRY_AFTER
        return response


# OpenAPI links from what a POST creates to the operations on it, so a client (and schemathesis'
# stateful phase) can book, then reschedule, cancel and read what it booked.
LINKS = {
    ("/api/appointments/", "post", "201"): [
        "appointments_retrieve",
        "appointments_reschedule_create",
        "appointments_cancel_create",
        "appointments_notifications_list",
        "appointments_confirm_create",
    ],
    ("/api/patients/", "post", "201"): ["patients_retrieve", "patients_partial_update"],
    ("/api/providers/", "post", "201"): ["providers_retrieve"],
    ("/api/locations/", "post", "201"): ["locations_retrieve"],
}


def add_links(result, generator, request, public):
    """drf-spectacular postprocessing hook: the LINKS above, for the operations that exist."""
    operation_ids = {
        operation["operationId"]: (path, method)
        for path, methods in result["paths"].items()
        for method, operation in methods.items()
    }
    for (path, method, code), targets in LINKS.items():
        response = result["paths"].get(path, {}).get(method, {}).get("responses", {}).get(code)
        if response is None:
            continue
        response["links"] = {
            target: {
                "operationId": target,
                "parameters": {parameter_name(operation_ids[target][0]): "$response.body#/id"},
            }
            for target in targets
            if target in operation_ids
        }
    return result


def parameter_name(path):
    return path.split("{", 1)[1].split("}", 1)[0]
