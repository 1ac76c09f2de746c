"""The field app's pages and data (docs/field-app.md).

The shell (/field/), its manifest and service worker hold no personal data: the service worker
keeps them for offline use. The phone's data comes from the JSON endpoints below, read with the
device's own token (`Authorization: Token`, the API's scheme) so a refresh works whenever there
is signal, even after the browser session ended; the device is enrolled with the browser
session (the portal's login) and CSRF.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from enrollment import selectors
from enrollment.api.clients import authenticate_token
from enrollment.models import ApiClient, FieldDevice, Region, StaffProfile

from . import devices, reference

LANGUAGES = reference.LANGUAGES

# The files of the app shell, cached by the service worker at install (the shell's budget,
# docs/benchmarks.md, counts exactly these).
SHELL_ASSETS = (
    "field/field.css",
    "field/app.js",
    "field/rules.js",
    "field/store.js",
    "field/sync.js",
    "field/icon-192.png",
    "field/icon-512.png",
)


def _agent(request: HttpRequest) -> StaffProfile | None:
    profile = selectors.staff_profile(request.user)
    if profile is None or profile.role != StaffProfile.Role.AGENT:
        return None
    return profile


def _json_error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def shell_version() -> str:
    """Changes whenever a shell file or the shell's template changes: the service worker's
    cache name, so a new release replaces the old cache."""
    h = hashlib.sha256()
    for name in SHELL_ASSETS:
        h.update(staticfiles_storage.url(name).encode())
        path = finders.find(name)
        if isinstance(path, str):
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    for language in LANGUAGES:
        with translation.override(language):
            h.update(render_to_string("field/app.html", _shell_context()).encode())
    return h.hexdigest()[:12]


def _shell_context() -> dict[str, Any]:
    return {"asset": _asset_urls(), "texts": ui_texts()}


def ui_texts() -> dict[str, str]:
    """The words the app's script shows (the shell's own labels are in its template)."""
    return {
        "online": _("Online"),
        "offline": _("Offline"),
        "waiting": _("Waiting"),
        "sending": _("Sending"),
        "sent": _("Sent"),
        "refused": _("Refused"),
        "suspense": _("Cash held for the back office"),
        "held": _("Waits for its registration"),
        "saved": _("Saved on this phone; it is sent when there is a signal."),
        "registered": _("Registered, KPJ %(kpj)s"),
        "registration": _("Registration"),
        "receipt": _("Receipt"),
        "receipt_no": _("Receipt number"),
        "collected_at": _("Collected at"),
        "agent": _("Agent"),
        "months": _("Months"),
        "amount": _("Amount"),
        "participant": _("Participant"),
        "kpj": _("KPJ"),
        "kpj_pending": _("KPJ follows after sending"),
        "covers": _("Covers %(first)s to %(last)s"),
        "fix": _("Fix"),
        "resend": _("Send again"),
        "logout_warn": _(
            "%(n)s items have not been sent. Log out anyway? They stay on this phone, "
            "encrypted, and are sent after your next login."
        ),
        "last_sync": _("Last sent: %(when)s"),
        "never_sync": _("Nothing sent yet."),
        "choose": _("Choose…"),
        "no_villages": _("The villages of this regency are not on this phone yet; connect once."),
        "pending_person": _("new, waiting to be sent"),
        "per_month": _("%(amount)s a month"),
        "total_for": _("%(amount)s for %(n)s months, from %(first)s"),
        "credit_used": _("credit used: %(amount)s"),
        "reactivation": _("Lapsed: paying restarts protection from this month."),
        "status_active": _("Active"),
        "status_grace": _("Grace"),
        "status_lapsed": _("Lapsed"),
        "other_login": _(
            "%(n)s items of another login wait on this phone until that agent logs in."
        ),
        "no_people": _("No participants on this phone yet."),
        "choose_person": _("Choose a participant."),
        "not_agent": _("The field app is for field agents; use the portal's pages."),
        "share_text": _(
            "BPJS Ketenagakerjaan receipt %(no)s: %(amount)s for %(name)s, %(months)s month(s)."
        ),
        "login_again": _("This phone must log in again to send its work."),
        "duplicate": _("Already registered"),
    }


def _asset_urls() -> dict[str, str]:
    return {
        name.split("/")[-1].replace(".", "_").replace("-", "_"): staticfiles_storage.url(name)
        for name in SHELL_ASSETS
    }


@require_GET
def app(request: HttpRequest) -> HttpResponse:
    """The shell. No login check here: offline, the phone opens it from its cache; online, the
    app itself asks /field/api/session/ and sends the agent to the login page when needed.
    `?lang=id|en`: the shell in that language (the service worker keeps both, and serves the
    one the agent chose, offline too)."""
    language = request.GET.get("lang")
    with translation.override(language if language in LANGUAGES else translation.get_language()):
        response = render(request, "field/app.html", _shell_context())
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def manifest(request: HttpRequest) -> HttpResponse:
    body = {
        "name": _("BPU field app"),
        "short_name": _("BPU field"),
        "description": _("Register workers and collect contributions, with or without signal."),
        "start_url": "/field/",
        "scope": "/field/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#0b6e4f",
        "lang": request.LANGUAGE_CODE,
        "icons": [
            {
                "src": staticfiles_storage.url(f"field/icon-{size}.png"),
                "sizes": f"{size}x{size}",
                "type": "image/png",
                "purpose": "any maskable",
            }
            for size in (192, 512)
        ],
    }
    return HttpResponse(
        json.dumps(body, ensure_ascii=False), content_type="application/manifest+json"
    )


@require_GET
def service_worker(request: HttpRequest) -> HttpResponse:
    context = {
        "version": shell_version(),
        "precache": json.dumps(
            [
                *(f"/field/?lang={language}" for language in LANGUAGES),
                *(staticfiles_storage.url(n) for n in SHELL_ASSETS),
            ]
        ),
        "store_url": staticfiles_storage.url("field/store.js"),
        "sync_url": staticfiles_storage.url("field/sync.js"),
    }
    response = render(request, "field/sw.js", context, content_type="text/javascript")
    response["Cache-Control"] = "no-cache"
    response["Service-Worker-Allowed"] = "/field/"
    return response


@never_cache
@require_GET
def session(request: HttpRequest) -> JsonResponse:
    """Whether the browser's session belongs to an agent who may enrol this phone, and the
    CSRF token the enrolment needs."""
    if not request.user.is_authenticated:
        return JsonResponse({"authenticated": False, "login_url": "/login/?next=/field/"})
    staff = _agent(request)
    if staff is None:
        return _json_error(
            "not_an_agent", _("The field app is for field agents; use the portal's pages."), 403
        )
    return JsonResponse(
        {"authenticated": True, "user_id": request.user.pk, "csrf": get_token(request)}
    )


@login_required
@never_cache
@require_POST
def enrol(request: HttpRequest) -> JsonResponse:
    staff = _agent(request)
    if staff is None:
        return _json_error(
            "not_an_agent", _("The field app is for field agents; use the portal's pages."), 403
        )
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    try:
        done = devices.enrol(
            staff,
            device_id=body.get("device_id"),
            label=request.headers.get("User-Agent", "")[:120],
        )
    except devices.DeviceRevoked:
        return _json_error(
            "device_revoked",
            _("This phone's access was withdrawn; log in again with your password."),
            403,
        )
    branch = staff.branch
    return JsonResponse(
        {
            "device_id": str(done.device.public_id),
            "receipt_prefix": done.device.receipt_prefix,
            "token": done.token,
            "queue_key": done.queue_key,
            "user_id": staff.user_id,
            "agent": {
                "name": staff.user.get_full_name() or staff.user.username,
                "code": staff.agent_code or "",
                "branch": branch.name if branch else "",
            },
        }
    )


def device_token(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """The data endpoints: the device's token (the API's `Authorization: Token`)."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        header = request.headers.get("Authorization", "").split()
        client = (
            authenticate_token(header[1])
            if len(header) == 2 and header[0] == "Token" and header[1].isascii()
            else None
        )
        device = (
            FieldDevice.objects.select_related("agent__user", "agent__branch__province")
            .filter(client=client)
            .first()
            if client is not None and client.scope == ApiClient.Scope.AGENT
            else None
        )
        if device is None:
            return _json_error(
                "device_unknown", _("This phone must log in again (its key is not valid)."), 401
            )
        return view(request, device, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _cached_json(request: HttpRequest, body: dict[str, Any]) -> JsonResponse:
    response = JsonResponse(body, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@device_token
def reference_data(request: HttpRequest, device: FieldDevice) -> JsonResponse:
    return _cached_json(request, reference.reference_data(device.agent))


@require_GET
@device_token
def regions(request: HttpRequest, device: FieldDevice, code: str) -> JsonResponse:
    """One regency of the agent's working area (its branch's province)."""
    branch = device.agent.branch
    regency = get_object_or_404(Region, code=code[:13], level=Region.Level.REGENCY)
    if branch is None or branch.province_id is None or regency.parent_id != branch.province_id:
        raise Http404
    return _cached_json(request, reference.area_regions(regency))


@require_GET
@device_token
def nik_prefixes(request: HttpRequest, device: FieldDevice) -> JsonResponse:
    return _cached_json(request, reference.nik_prefixes())


@require_GET
@device_token
def participants(request: HttpRequest, device: FieldDevice) -> JsonResponse:
    people = reference.own_participants(device.agent, settings.FIELD_PARTICIPANTS_MAX)
    return _cached_json(request, {"participants": people})
