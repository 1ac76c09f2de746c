"""One error format for the whole API, with a stable machine-readable code per problem:

    {"code": "validation_error", "message": "...", "errors": [{"field": "nik", "code": "...",
     "message": "..."}]}

Messages follow Accept-Language (Indonesian by default, English with `en`). Domain errors of the
services (RegistrationError, PaymentError, BatchError, QuoteError) are turned into this shape by
the views; DRF's own exceptions by `exception_handler` below.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from bpjsportal.core.errors import RETRY_AFTER_SECONDS, database_unavailable_message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldError:
    """One broken rule on one field: the API's error list and the domain errors share it."""

    field: str
    code: str
    message: str | Promise


class ApiError(exceptions.APIException):
    """An error with a code, a message, optional per-field errors and extra details."""

    def __init__(
        self,
        code: str,
        message: str | Promise,
        *,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        errors: Sequence[FieldError] = (),
        **details: Any,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.errors = list(errors)
        self.details = details
        super().__init__(detail=str(message), code=code)


def error_body(
    code: str, message: str | Promise, errors: Sequence[FieldError] = (), **details: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": code,
        "message": str(message),
        "errors": [{"field": e.field, "code": e.code, "message": str(e.message)} for e in errors],
    }
    body.update(details)
    return body


def flatten(detail: Any, prefix: str = "") -> list[FieldError]:
    """DRF's nested ValidationError detail → a flat list of (field path, code, message)."""
    out: list[FieldError] = []
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            out.extend(flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name))
    elif isinstance(detail, list):
        if all(isinstance(d, exceptions.ErrorDetail) for d in detail):
            out.extend(FieldError(prefix, d.code or "invalid", str(d)) for d in detail)
        else:
            for i, value in enumerate(detail):
                out.extend(flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    elif isinstance(detail, exceptions.ErrorDetail):
        out.append(FieldError(prefix, detail.code or "invalid", str(detail)))
    else:
        out.append(FieldError(prefix, "invalid", str(detail)))
    return out


_CODES: list[tuple[type[BaseException], str, Promise]] = [
    (exceptions.ParseError, "malformed_json", _("The request body is not valid JSON.")),
    (
        exceptions.UnsupportedMediaType,
        "unsupported_media_type",
        _("Send the body as application/json."),
    ),
    (
        exceptions.NotAuthenticated,
        "not_authenticated",
        _("Send the API token: Authorization: Token <token>."),
    ),
    (exceptions.AuthenticationFailed, "invalid_token", _("The API token is not valid.")),
    (
        exceptions.PermissionDenied,
        "permission_denied",
        _("This API client may not do this."),
    ),
    (exceptions.NotFound, "not_found", _("Not found.")),
    (exceptions.MethodNotAllowed, "method_not_allowed", _("This method is not allowed here.")),
    (exceptions.NotAcceptable, "not_acceptable", _("Only JSON responses are available.")),
]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every error leaves in the one format."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, OperationalError | InterfaceError):
        # PostgreSQL restarting or unreachable: the request's transaction is gone, nothing was
        # written; the client retries (bpjsportal/core/errors.py has the page equivalent).
        log.warning("database unavailable during an API request: %r", exc)
        exc = ApiError(
            "service_unavailable",
            database_unavailable_message(),
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            retry_after=RETRY_AFTER_SECONDS,
        )
    elif isinstance(exc, RequestDataTooBig):
        exc = ApiError(
            "request_too_large",
            _("The request body is too large."),
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        response.data = error_body(exc.code, exc.message, exc.errors, **exc.details)
        if "retry_after" in exc.details:
            response["Retry-After"] = str(exc.details["retry_after"])
    elif isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(getattr(exc, "wait", None) or 0))
        response.data = error_body(
            "throttled",
            _("Too many requests; try again in %(seconds)s seconds.") % {"seconds": wait},
            retry_after=wait,
        )
        response["Retry-After"] = str(wait)
    elif isinstance(exc, exceptions.ValidationError):
        response.data = error_body(
            "validation_error",
            _("Some fields are not valid; see errors."),
            flatten(exc.detail),
        )
    else:
        for kind, code, message in _CODES:
            if isinstance(exc, kind):
                response.data = error_body(code, message)
                break
        else:
            detail = getattr(exc, "detail", "")
            response.data = error_body(getattr(exc, "default_code", "error"), str(detail))
    return response
