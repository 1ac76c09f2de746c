"""`Authorization: Token <token>` authentication and the per-client throttle."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from bpjsportal.core import redis_status
from bpjsportal.core.audit_context import note_api_client

from ..models import ApiClient
from .clients import authenticate_token

log = logging.getLogger(__name__)


class ClientUser(AnonymousUser):
    """request.user for an API client: authenticated, but no portal user and no permissions."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    @property
    def is_anonymous(self) -> bool:  # type: ignore[override]
        return False


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[ClientUser, ApiClient] | None:
        raw = request.META.get("HTTP_AUTHORIZATION", "")
        header = raw.split() if isinstance(raw, str) else []
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2 or not header[1].isascii():
            raise exceptions.AuthenticationFailed(_("The API token is not valid."))
        token = header[1]
        client = authenticate_token(token)
        if client is None:
            raise exceptions.AuthenticationFailed(_("The API token is not valid."))
        note_api_client(client)  # the audit trail records which client made each change
        return ClientUser(client), client

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "enrollment.api.auth.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>`",
        }


class ClientRateThrottle(SimpleRateThrottle):
    """Requests per client (settings.API_THROTTLE_RATE, e.g. "600/min"), counted in Redis.

    Fails open: while the cache (Redis) is unavailable every request is allowed, with a warning
    in the log at most once a minute -- registrations and payments matter more than the limit.
    """

    scope = "api_client"
    _warned_at = 0.0

    def get_rate(self) -> str | None:
        rate: str | None = settings.API_THROTTLE_RATE
        return rate

    def allow_request(self, request: Request, view: Any) -> bool:
        # The rate is read per request so an operator (or a test) can change it.
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self._cache_down():
            return True
        allowed = super().allow_request(request, view)
        return True if self._cache_down() else allowed  # the cache failed during the check

    @staticmethod
    def _cache_down() -> bool:
        if not redis_status.is_down(redis_status.cache_url()):
            return False
        now = time.monotonic()
        if now - ClientRateThrottle._warned_at > 60:
            ClientRateThrottle._warned_at = now
            log.warning("API throttle failing open: the cache (Redis) is unavailable")
        return True

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiClient):
            return self.get_ident(request)
        # The random token prefix too: ids restart in a recreated database sharing the cache.
        return f"throttle_api_client_{request.auth.pk}_{request.auth.token_prefix}"
