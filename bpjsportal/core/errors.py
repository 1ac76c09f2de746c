"""Error pages with a clear message (a 3-MB form post lands in bad_request; a database outage
in service_unavailable, a 503 rendered without touching the database)."""

from __future__ import annotations

import json
import logging
import sys

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)

# What psycopg raises (through Django) when PostgreSQL restarts, fails over or refuses
# connections mid-request.
DATABASE_DOWN_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


class NulInRequest(ValueError):
    """A request parameter holds NUL, which PostgreSQL text cannot store (RejectNulMiddleware)."""


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, NulInRequest):
        message = _("The request contains a NUL character, which no field may hold.")
    elif isinstance(exception, RequestDataTooBig):
        message = _("The form sent too much data (a field is far too long). Check and try again.")
    else:
        message = _("The request could not be understood. Check the form and try again.")
    return render(request, "400.html", {"message": message}, status=400)


def database_unavailable_message() -> str:
    return _(
        "The database is not available at the moment; nothing was saved. "
        "Try again in a few seconds."
    )


def service_unavailable(
    request: HttpRequest, exception: BaseException | None = None
) -> HttpResponse:
    """503 for a database outage: JSON in the API's error format under /api/, otherwise a page
    that needs no database (no session, no user, no context processors)."""
    log.warning("database unavailable during %s %s: %r", request.method, request.path, exception)
    message = database_unavailable_message()
    if request.path.startswith("/api/"):
        body = {
            "code": "service_unavailable",
            "message": message,
            "errors": [],
            "retry_after": RETRY_AFTER_SECONDS,
        }
        response = HttpResponse(
            json.dumps(body), status=503, content_type="application/json; charset=utf-8"
        )
    else:
        html = loader.get_template("503.html").render({"message": message})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database outage raised outside a view (a middleware loading the session or
    the user) is still a 503; anything else is the plain 500 page."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_DOWN_ERRORS):
        return service_unavailable(request, exc)
    return HttpResponseServerError(loader.get_template("500.html").render())
