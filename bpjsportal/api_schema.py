"""The OpenAPI schema (drf-spectacular, /api/schema/) tells the whole truth about errors and
empty parameters: a postprocessing hook that every operation passes through, so a view cannot
forget an error response it really gives (docs/api.md, "Errors").

- Every operation documents the error responses every API view can give, with the one error
  body (`Error`: code, message, errors): 400 (a parameter or body the API refuses, NUL in a
  parameter, a bad cursor), 401 (no or a bad token), 403 (the client's scope may not do this; a
  browser session that has not passed the second factor, bpjsportal/access.py), 406 (a client
  that accepts no JSON), 429 (the request throttle, a channel's daily look-ups: `Retry-After`)
  and 503 (the database is unavailable: `Retry-After`); an operation with a request body also
  413 (too large) and 415 (not JSON). What only some operations give (404, 409, 422) each view
  declares itself; the hook keeps whatever a view declared.
- An optional query parameter sent empty (`?status=`) is the parameter not sent (but for
  `page_size`, which must be a number): the schema says so with `allowEmptyValue`.
"""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
                "required": ["field", "code", "message"],
            },
        },
    },
    "required": ["code", "message", "errors"],
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
EVERY_OPERATION = {
    "400": "A parameter or the body is refused (`code`, and per field in `errors`).",
    "401": "No API token, or not a valid one (`not_authenticated`, `invalid_token`).",
    "403": "This client may not do this (`permission_denied`; a browser session that has not "
    "passed the second factor: `otp_required`).",
    "406": "The request accepts no JSON response (`not_acceptable`).",
    "429": "Too many requests (`throttled`) or a channel's daily look-ups are used up "
    "(`lookup_limit_reached`).",
    "503": "The database is unavailable; nothing was written (`service_unavailable`).",
}
WITH_A_BODY = {
    "413": "The request body is too large (`request_too_large`).",
    "415": "The body is not JSON (`unsupported_media_type`).",
}
METHODS = ("get", "put", "post", "patch", "delete")
# Query parameters the API refuses when sent empty (400), unlike every other one.
REFUSED_EMPTY = {"page_size"}


def document_errors(result: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (settings.SPECTACULAR_SETTINGS)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR_SCHEMA)
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            expected = dict(EVERY_OPERATION)
            if "requestBody" in operation:
                expected.update(WITH_A_BODY)
            for status, description in expected.items():
                responses.setdefault(status, {"description": description, "content": error_ref})
            for status in ("429", "503"):
                responses[status].setdefault("headers", RETRY_AFTER)
            for parameter in operation.get("parameters", []):
                if (
                    parameter.get("in") == "query"
                    and not parameter.get("required")
                    and parameter.get("name") not in REFUSED_EMPTY
                ):
                    parameter["allowEmptyValue"] = True
    return result
