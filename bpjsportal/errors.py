"""Error pages with a clear message (a 3-MB form post lands in bad_request)."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    from .middleware import NulInRequest

    if isinstance(exception, NulInRequest):
        message = _("The request contains a NUL character, which no field may hold.")
    elif isinstance(exception, RequestDataTooBig):
        message = _("The form sent too much data (a field is far too long). Check and try again.")
    else:
        message = _("The request could not be understood. Check the form and try again.")
    return render(request, "400.html", {"message": message}, status=400)
