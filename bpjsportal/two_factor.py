"""The TOTP step after the password (django-otp): /login/otp/ asks for the 6-digit code,
/login/otp/setup/ enrols an authenticator app with a QR code. docs/security.md."""

from __future__ import annotations

import base64
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import rotate_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from .access import ENROLLED_SESSION_KEY
from .core import qr


class TokenForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        min_length=6,
        max_length=8,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "autofocus": True}
        ),
    )

    def clean_token(self) -> str:
        token = "".join(self.cleaned_data["token"].split())
        if not token.isdigit():
            raise forms.ValidationError(_("The code is 6 digits."))
        return token


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("enrollment:home")


def _check(form: TokenForm, device: TOTPDevice) -> bool:
    """Verify the form's code against the device; on refusal say why (wrong, or too many wrong
    codes in a row: django-otp then makes the user wait, doubling each time)."""
    allowed, _details = device.verify_is_allowed()
    if not allowed:
        form.add_error("token", _("Too many wrong codes. Wait a moment, then try the newest code."))
        return False
    if device.verify_token(form.cleaned_data["token"]):
        return True
    form.add_error("token", _("That code is wrong or has expired. Try the newest code."))
    return False


def _pass_second_factor(request: HttpRequest, device: TOTPDevice) -> None:
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
