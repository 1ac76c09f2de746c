"""Request hygiene shared by every page: PostgreSQL text cannot hold NUL, so a parameter carrying
one is the client's error (400 with a clear message), never a 500 from the database. The API
checks the same in its own views (enrollment/api/base.py) to answer in JSON."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse

from .errors import DATABASE_DOWN_ERRORS, NulInRequest, bad_request, service_unavailable


class RejectNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):  # the API answers in its own JSON error format
            return self.get_response(request)
        if "%00" in request.META.get("QUERY_STRING", "") or _has_nul(request):
            return bad_request(request, NulInRequest())
        return self.get_response(request)


def _has_nul(request: HttpRequest) -> bool:
    if request.method != "POST" or request.content_type not in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        return False
    return any("\x00" in k or any("\x00" in v for v in vs) for k, vs in request.POST.lists())


def _database_reachable() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DATABASE_DOWN_ERRORS:
        return False
    return True


class DatabaseUnavailableMiddleware:
    """PostgreSQL restarting, failing over or refusing connections is a clear 503 ("try again in
    a moment"), never a 500 traceback. The transaction of the failed request was rolled back by
    PostgreSQL (nothing half-written: every write path is one transaction); Django drops the
    broken connection at the end of the request and CONN_HEALTH_CHECKS makes the next request
    open a fresh one. The API answers in its JSON format (bpjsportal/core/api/errors.py); errors
    raised outside views reach handler500 (bpjsportal.core.errors.server_error), which does the
    same.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and not _database_reachable():
            # An outage hit a middleware (session, user, second factor) before any view: the
            # 500 it produced is the same outage; say so (503, retry) instead.
            return service_unavailable(request, None)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_DOWN_ERRORS):
            return service_unavailable(request, exception)
        return None
