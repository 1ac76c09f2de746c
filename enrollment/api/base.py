"""Enrollment's API views for API clients: token auth, per-client throttle (on the shared
BaseApiView of bpjsportal/core/api/base.py), and the answer to a refused registration."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.request import Request

from bpjsportal.core.api.base import BaseApiView
from bpjsportal.core.api.errors import ApiError

from ..core_system import CoreUnavailable
from ..errors import DuplicateNik, RegistrationError
from ..models import ApiClient
from ..nik_check import as_seen_by
from .auth import ApiTokenAuthentication, ClientRateThrottle


class ApiView(BaseApiView):
    """An API view for API clients: their token, their per-client rate."""

    authentication_classes = [ApiTokenAuthentication]
    throttle_classes = [ClientRateThrottle]

    def client(self, request: Request) -> ApiClient:
        auth = request.auth
        assert isinstance(auth, ApiClient)
        return auth


def registration_error(exc: RegistrationError, client: ApiClient) -> ApiError:
    """The API's answer to a refused registration, as `client` may read it (a NIK held outside
    its scope names no KPJ or branch: enrollment/nik_check.py as_seen_by)."""
    if isinstance(exc, CoreUnavailable):
        return ApiError(
            "core_unavailable",
            exc.errors[0].message,
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, DuplicateNik):
        errors = as_seen_by(client, exc)
        return ApiError(
            "duplicate_nik",
            errors[0].message,
            status_code=status.HTTP_409_CONFLICT,
            errors=errors,
        )
    return ApiError(
        "validation_error",
        _("Some fields are not valid; see errors."),
        errors=exc.errors,
    )
