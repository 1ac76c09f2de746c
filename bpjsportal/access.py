"""Access to the portal after the password (docs/security.md, "Login and sessions"):

- SecondFactorMiddleware: admins, regional admins and back-office users (and anyone who enrolled
  a TOTP device) must pass the TOTP step before any page; until then pages redirect to it and
  session-authenticated API calls are 403 `otp_required`;
- IdleTimeoutMiddleware: a session unused for SESSION_IDLE_TIMEOUT seconds is logged out;
- PortalAdminSite: the back office needs a verified second factor and the `use_back_office` role;
- client_ip: the address django-axes counts failed logins against (behind ACCESS_PROXY_COUNT
  proxies, the client's address from X-Forwarded-For).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp import user_has_device
from django_otp.admin import OTPAdminSite

from bpjsportal.core.api.errors import error_body
from enrollment.permissions import can, requires_otp

ENROLLED_SESSION_KEY = "otp_enrolled"
LAST_SEEN_SESSION_KEY = "last_seen"
# Paths an unverified user may still reach: the login and TOTP pages, logout, language, assets.
OPEN_PREFIXES = ("/login/", "/logout/", "/i18n/", "/jsi18n/", "/static/")


def needs_second_factor(request: HttpRequest) -> bool:
    """True when this session's user must pass TOTP and has not yet."""
    user = request.user
    if not user.is_authenticated or getattr(user, "is_verified", lambda: False)():
        return False
    if requires_otp(user):
        return True
    session = request.session
    if ENROLLED_SESSION_KEY not in session:  # asked once per session
        session[ENROLLED_SESSION_KEY] = user_has_device(user, confirmed=True)
    return bool(session[ENROLLED_SESSION_KEY])


def second_factor_url(request: HttpRequest) -> str:
    """The TOTP step for this user (set-up page if they have no device yet), with ?next=."""
    name = "otp-verify" if user_has_device(request.user, confirmed=True) else "otp-setup"
    return f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}"


class SecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(OPEN_PREFIXES) and needs_second_factor(request):
            if request.path.startswith("/api/"):
                # the API's one error body (bpjsportal/core/api/errors.py), as its schema says
                body = error_body(
                    "otp_required", _("Enter your two-factor code on the website first.")
                )
                return JsonResponse(body, status=403)
            return HttpResponseRedirect(second_factor_url(request))
        return self.get_response(request)


class IdleTimeoutMiddleware:
    """Logs a session out after SESSION_IDLE_TIMEOUT seconds without a request (0 = never).
    The last-seen time is written at most once a minute, not on every request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timeout = settings.SESSION_IDLE_TIMEOUT
        if timeout and request.user.is_authenticated and hasattr(request, "session"):
            now = int(time.time())
            last = request.session.get(LAST_SEEN_SESSION_KEY)
            if isinstance(last, int) and now - last > timeout:
                logout(request)
                messages.info(
                    request,
                    _("You were logged out after %(minutes)s minutes without activity.")
                    % {"minutes": timeout // 60},
                )
            elif not isinstance(last, int) or now - last >= 60:
                request.session[LAST_SEEN_SESSION_KEY] = now
        return self.get_response(request)


class PortalAdminSite(OTPAdminSite):
    """The back office: a verified second factor (OTPAdminSite) and the `use_back_office` row
    of the roles table. Logging in goes through the portal's own login and TOTP pages."""

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(super().has_permission(request)) and can(request.user, "use_back_office")

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        target = request.GET.get("next") or reverse("admin:index")
        if request.user.is_authenticated and not request.user.is_verified():  # type: ignore[attr-defined]
            return HttpResponseRedirect(f"{reverse('otp-verify')}?{urlencode({'next': target})}")
        if request.user.is_authenticated:  # verified but not an admin: no back office
            return HttpResponseRedirect(reverse("enrollment:home"))
        return HttpResponseRedirect(f"{reverse('login')}?{urlencode({'next': target})}")


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any = None
) -> HttpResponse:
    """django-axes' answer to a locked-out username + address: a clear page (429), not a 500."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_minutes": minutes}
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": "locked_out", "message": _("Too many failed logins; try again later.")},
            status=429,
        )
    return render(request, "registration/locked_out.html", context, status=429)


def client_ip(request: HttpRequest) -> str | None:
    """The address failed logins are counted against. Behind ACCESS_PROXY_COUNT proxies that
    append to X-Forwarded-For, the entry that many from the right (what the first proxy saw);
    else REMOTE_ADDR. Never the client-supplied left end, which anyone can forge."""
    count = settings.ACCESS_PROXY_COUNT
    if count:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= count:
            return hops[-count]
    remote: str | None = request.META.get("REMOTE_ADDR")
    return remote
