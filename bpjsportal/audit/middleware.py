"""Attach who and from where to every database change made while serving a request."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from pghistory.middleware import HistoryMiddleware

from bpjsportal.core.audit_context import request_context


class AuditContextMiddleware(HistoryMiddleware):
    """pghistory's middleware (which also follows request.user when DRF authenticates later in
    the view) with the username, client IP and method added. API clients are added by the token
    authentication (enrollment/api/auth.py -> bpjsportal.core.audit_context.note_api_client)."""

    def get_context(self, request: HttpRequest) -> dict[str, Any]:
        return request_context(request)
