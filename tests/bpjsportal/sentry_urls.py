"""The portal's URLs plus one view that fails with personal data in its error (the error
tracker's test, tests/bpjsportal/test_error_tracking.py, runs it in a child process)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from bpjsportal.urls import urlpatterns as portal


def fail(request: HttpRequest) -> HttpResponse:
    raise ValueError("registration failed for NIK 3273011203900001, phone 081234567890")


urlpatterns = [path("sentry-test/fail/", fail), *portal]
