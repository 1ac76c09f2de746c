"""Enrollment's request wiring: the log of full NIKs a response showed (enrollment.pii)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import pii


class NikDisclosureLogMiddleware:
    """One log line (logger `bpjsportal.pii.disclosure`) for each response that showed full
    NIKs: who (user or API client), which path, how many and which participant ids. The API
    serializer notes each unmasked NIK (enrollment.pii.note_disclosure); pages always mask."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = pii.begin_disclosures()
        try:
            response = self.get_response(request)
        finally:
            who = ""
            if pii.pending_disclosures():  # only then look at the user (no query otherwise)
                user = getattr(request, "user", None)
                client = getattr(user, "client", None)
                who = (
                    f"API client {client.pk} ({client.name})"
                    if client is not None
                    else f"user {getattr(user, 'pk', None)}"
                )
            pii.end_disclosures(token, who=who, where=f"{request.method} {request.path}")
        return response
