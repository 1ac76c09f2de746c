"""The TOTP step after the password (django-otp): /login/otp/ asks for the 6-digit code (or a
backup code), /login/otp/setup/ enrols an authenticator app with a QR code,
/login/otp/backup-codes/ issues ten single-use backup codes. docs/security.md."""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from urllib.parse import urlencode

import pghistory
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import rotate_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .access import ENROLLED_SESSION_KEY
from .core import qr

# --- backup codes (django-otp's static device) --------------------------------------------
BACKUP_CODES = 10
BACKUP_DEVICE_NAME = "backup"
# no 0/o, 1/l/i: read off paper
_BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_BACKUP_CODE = re.compile(r"[a-z2-9]{4}-?[a-z2-9]{4}")


def backup_digest(code: str) -> str:
    """What the static device stores for a backup code: a keyed digest (HMAC-SHA256 under
    SECRET_KEY, 16 hex digits), never the code — a copy of the database gives no usable code."""
    normal = code.strip().lower().replace("-", "").replace(" ", "")
    mac = hmac.new(settings.SECRET_KEY.encode(), b"bpu-backup-code:" + normal.encode(), "sha256")
    return mac.hexdigest()[:16]


def issue_backup_codes(user: object) -> list[str]:
    """Ten new single-use codes (`xxxx-xxxx`), replacing any earlier ones; returned once."""
    codes = [
        "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(4))
        + "-"
        + "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(4))
        for _ in range(BACKUP_CODES)
    ]
    with transaction.atomic(), pghistory.context(backup_code="replaced"):
        device, _created = StaticDevice.objects.get_or_create(
            user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(
            [StaticToken(device=device, token=backup_digest(c)) for c in codes]
        )
    return codes


def backup_codes_left(user: object) -> int:
    return StaticToken.objects.filter(
        device__user=user, device__name=BACKUP_DEVICE_NAME, device__confirmed=True
    ).count()


class TokenForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )

    def clean_token(self) -> str:
        token = "".join(self.cleaned_data["token"].split()).lower()
        if token.isdigit() and len(token) == 6:
            return token
        if _BACKUP_CODE.fullmatch(token):
            return token
        raise forms.ValidationError(
            _("Enter the 6-digit code from your app, or one of your backup codes (xxxx-xxxx).")
        )

    @property
    def is_backup_code(self) -> bool:
        return not self.cleaned_data["token"].isdigit()


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("enrollment:home")


def _check(form: TokenForm, device: TOTPDevice | StaticDevice) -> bool:
    """Verify the form's code against the device; on refusal say why (wrong, or too many wrong
    codes in a row: django-otp then makes the user wait, doubling each time). A backup code is
    checked by its digest and used up (django-otp deletes the matching token: an audit event)."""
    allowed, _details = device.verify_is_allowed()
    if not allowed:
        form.add_error("token", _("Too many wrong codes. Wait a moment, then try the newest code."))
        return False
    token = form.cleaned_data["token"]
    if isinstance(device, StaticDevice):
        with pghistory.context(backup_code="used"):
            used = device.verify_token(backup_digest(token))
        if used:
            return True
        form.add_error("token", _("That backup code is wrong or has been used already."))
        return False
    if device.verify_token(token):
        return True
    form.add_error("token", _("That code is wrong or has expired. Try the newest code."))
    return False


def _pass_second_factor(request: HttpRequest, device: TOTPDevice | StaticDevice) -> None:
    """Mark the session verified, under a new session key: a key known before the second
    factor (fixed by an attacker, seen on a shared machine) must not become a verified session.
    cycle_key() keeps the session's data and deletes the old key's row; the CSRF token is
    rotated too, as django.contrib.auth.login() does at the password step."""
    otp_login(request, device)
    request.session[ENROLLED_SESSION_KEY] = True
    request.session.cycle_key()
    rotate_token(request)


@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """The second step of logging in: a TOTP code from the user's confirmed device."""
    next_url = _next_url(request)
    if request.user.is_verified():  # type: ignore[union-attr]
        return redirect(next_url)
    devices = list(TOTPDevice.objects.devices_for_user(request.user, confirmed=True))
    if not devices:
        return redirect(f"{reverse('otp-setup')}?{urlencode({'next': next_url})}")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if form.is_backup_code:
            backup = StaticDevice.objects.filter(
                user=request.user, name=BACKUP_DEVICE_NAME, confirmed=True
            ).first()
            if backup is None:
                form.add_error("token", _("You have no backup codes. Use your authenticator app."))
            elif _check(form, backup):
                _pass_second_factor(request, backup)
                left = backup.token_set.count()
                messages.warning(
                    request,
                    _("You logged in with a backup code; %(left)d left. Make new ones soon.")
                    % {"left": left},
                )
                return redirect(next_url)
        else:
            device = devices[0]  # one authenticator app per user (the set-up page makes one)
            if _check(form, device):
                _pass_second_factor(request, device)
                return redirect(next_url)
    status = 400 if form.errors else 200
    return render(
        request, "registration/otp_verify.html", {"form": form, "next": next_url}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code (or type the key), confirm with a code."""
    next_url = _next_url(request)
    confirmed = TOTPDevice.objects.devices_for_user(request.user, confirmed=True)
    if confirmed.exists() and not request.user.is_verified():  # type: ignore[union-attr]
        return redirect(f"{reverse('otp-verify')}?{urlencode({'next': next_url})}")
    if confirmed.exists():
        messages.info(request, _("Two-factor login is already set up for your account."))
        return redirect(next_url)
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(
            user=request.user, name=_("Authenticator app"), confirmed=False
        )
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _check(form, device):
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        _pass_second_factor(request, device)
        messages.success(request, _("Two-factor login is set up."))
        return redirect(next_url)
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return render(
        request,
        "registration/otp_setup.html",
        {
            "form": form,
            "next": next_url,
            "qr_svg": qr.svg(device.config_url),
            "key": " ".join(key[i : i + 4] for i in range(0, len(key), 4)),
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def backup_codes(request: HttpRequest) -> HttpResponse:
    """Issue ten new backup codes (shown once; the earlier ones stop working). Only in a session
    that has passed the second factor: a stolen password alone cannot mint codes."""
    if not request.user.is_verified():  # type: ignore[union-attr]
        return redirect(f"{reverse('otp-verify')}?{urlencode({'next': request.path})}")
    codes: list[str] = []
    if request.method == "POST":
        codes = issue_backup_codes(request.user)
    return render(
        request,
        "registration/otp_backup_codes.html",
        {"codes": codes, "left": backup_codes_left(request.user)},
    )
