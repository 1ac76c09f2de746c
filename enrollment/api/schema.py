"""What every API operation's OpenAPI documentation shares (docs/api.md "The schema"): the tags,
the operation-id convention, the one error body with its examples, and fake example values.

Operation ids: the path's fixed segments after /api/v1/ joined by "_" (a "-" becomes "_"),
then the action: `list` (a GET answering a list or a page of results), `retrieve` (any other
GET), `create` (POST), `partial_update` (PATCH): `participants_list`,
`bills_payments_create`. tests/api/test_schema.py holds every operation to it.

Example values are fake: the NIK 3273051705900001 (Kota Bandung, district 05, born
17 May 1990, serial 0001) and the KPJ number 10000000018 are test values, the names invented.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from .serializers import ErrorSerializer

# The tags, in the order the docs page shows them (settings.SPECTACULAR_SETTINGS["TAGS"]
# describes each).
REFERENCE = "reference"
PARTICIPANTS = "participants"
PAYMENTS = "payments"
BILLS = "bills"
AUTODEBIT = "autodebit"
SYNC = "sync"
REPORTING = "reporting"
TAGS = (REFERENCE, PARTICIPANTS, PAYMENTS, BILLS, AUTODEBIT, SYNC, REPORTING)
OPERATION_ID_PATTERN = r"^[a-z]+(_[a-z]+)*_(list|retrieve|create|partial_update)$"

NIK = "3273051705900001"
MASKED_NIK = "3273**********01"
KPJ = "10000000018"
WHEN = "2026-12-03T09:41:00+07:00"


def error_example(
    code: str, message: str, *, errors: list[dict[str, str]] | None = None, **details: Any
) -> OpenApiExample:
    """An example of the one error body (bpjsportal/core/api/errors.py)."""
    value = {"code": code, "message": message, "errors": errors or [], **details}
    return OpenApiExample(code, value=value, response_only=True)


def error(description: str, *examples: OpenApiExample) -> OpenApiResponse:
    """A documented error status: the one error body, what it means here, and its codes."""
    return OpenApiResponse(ErrorSerializer, description=description, examples=list(examples))


def ok(serializer: Any, description: str, *examples: OpenApiExample) -> OpenApiResponse:
    return OpenApiResponse(serializer, description=description, examples=list(examples))


def response_example(name: str, value: Any, summary: str = "") -> OpenApiExample:
    return OpenApiExample(name, value=value, summary=summary, response_only=True)


def request_example(name: str, value: Any, summary: str = "") -> OpenApiExample:
    return OpenApiExample(name, value=value, summary=summary, request_only=True)


INCOME_NOT_LEVEL = (
    "Rp 1.050.000 is not an income level of the schedule; nearest: Rp 1.000.000, Rp 1.100.000."
)
VALIDATION_ERROR = error_example(
    "validation_error",
    "Some fields are not valid; see errors.",
    errors=[
        {
            "field": "declared_income",
            "code": "income_not_level",
            "message": INCOME_NOT_LEVEL,
        }
    ],
)
PARTICIPANT_NOT_FOUND = error(
    "No participant with this id within the client's scope (`not_found`): outside the scope "
    "is a 404, never a 403.",
    error_example("not_found", "Not found."),
)
