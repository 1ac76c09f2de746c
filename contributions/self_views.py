"""The participant's own pages (/me/): log in with a one-time code sent to the phone, then see
the status in plain words, the amount due, the payment history with receipts, get a bill for 1,
3, 6 or 12 months, and stop or restart reminders. No staff login; the session holds only the
participant's id and ends after settings.SELF_SERVICE_IDLE_SECONDS without a request
(contributions/self_service.py has the rules of the codes)."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from enrollment.models import Participant
from enrollment.pii import mask_name

from . import autodebit, selectors, self_service
from .bills import BillError, open_bill
from .errors import PaymentError
from .messaging.reminders import opt_in, opt_out
from .models import AutodebitMandate, Coverage, Payment, ReminderPreference
from .private_pages import bill_display, private
from .tasks import send_participant_code

PARTICIPANT = "self_service_participant"
SEEN = "self_service_seen"
PENDING = "self_service_pending"  # the code id being typed (0: nothing was sent)
PENDING_TRIES = "self_service_pending_tries"
BILL_MONTHS = (1, 3, 6, 12)


def _end(request: HttpRequest) -> None:
    for key in (PARTICIPANT, SEEN, PENDING, PENDING_TRIES):
        request.session.pop(key, None)


def current(request: HttpRequest) -> Participant | None:
    """The logged-in participant, unless the session sat idle too long (then it ends)."""
    pk = request.session.get(PARTICIPANT)
    if not isinstance(pk, int):
        return None
    now = int(time.time())
    seen = request.session.get(SEEN)
    if not isinstance(seen, int) or now - seen > settings.SELF_SERVICE_IDLE_SECONDS:
        _end(request)
        return None
    request.session[SEEN] = now
    return Participant.objects.select_related("occupation").filter(pk=pk).first()


def _login_page(request: HttpRequest, errors: list[str], status: int = 200) -> HttpResponse:
    return private(
        render(
            request,
            "contributions/me/login.html",
            {"errors": errors, "number": request.POST.get("number", "")},
            status=status,
        )
    )


@require_http_methods(["GET"])
def me(request: HttpRequest) -> HttpResponse:
    participant = current(request)
    if participant is None:
        return _login_page(request, [])
    return private(render(request, "contributions/me/home.html", _home(participant)))


def _home(participant: Participant) -> dict[str, Any]:
    cov = Coverage.objects.filter(pk=participant.pk).first()
    pref = ReminderPreference.objects.filter(pk=participant.pk).first()
    return {
        **autodebit.facts(participant),
        "name": participant.full_name.split()[0] if participant.full_name else "",
        "kpj": participant.kpj_number,
        "coverage": cov,
        "due": selectors.amount_due_now(participant, cov, timezone.localdate()),
        "credit": cov.credit if cov else 0,
        "payments": Payment.objects.filter(participant=participant).order_by("-paid_at")[:24],
        "bill_months": BILL_MONTHS,
        "reminders_off": bool(pref and pref.opted_out_at),
    }


def _birth_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


@require_POST
def me_start(request: HttpRequest) -> HttpResponse:
    """Asks for a code. The answer does not depend on whether the details matched."""
    number = "".join(ch for ch in request.POST.get("number", "") if ch.isdigit())
    born = _birth_date(request.POST.get("birth_date", ""))
    errors = []
    if len(number) not in (11, 16):
        errors.append(_("Enter your 11-digit KPJ number or your 16-digit NIK."))
    if born is None:
        errors.append(_("Enter your date of birth."))
    if errors:
        return _login_page(request, errors, status=400)
    if not self_service.address_allowed(request.META.get("REMOTE_ADDR", "")):
        message = _("Too many requests from this network. Try again in an hour.")
        return _login_page(request, [message], status=429)
    assert born is not None
    participant = self_service.find(number, born)
    issued = self_service.issue_code(participant) if participant is not None else None
    if issued is not None:
        transaction.on_commit(lambda: send_participant_code.delay(issued.code_id, issued.code))
    _end(request)
    request.session[PENDING] = issued.code_id if issued is not None else 0
    request.session[PENDING_TRIES] = 0
    return redirect("contributions:me_code")


@require_http_methods(["GET", "POST"])
def me_code(request: HttpRequest) -> HttpResponse:
    pending = request.session.get(PENDING)
    if not isinstance(pending, int):
        return redirect("contributions:me")
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        tries = int(request.session.get(PENDING_TRIES, 0)) + 1
        request.session[PENDING_TRIES] = tries
        found = self_service.check_code(pending, request.POST.get("code", ""))  # 0: none
        if found is not None:
            request.session.cycle_key()  # a new session id for the logged-in participant
            _end(request)
            request.session[PARTICIPANT] = found.pk
            request.session[SEEN] = int(time.time())
            return redirect("contributions:me")
        status = 400
        if tries >= settings.SELF_SERVICE_MAX_TRIES:
            _end(request)
            errors.append(_("Too many wrong codes. Ask for a new code later."))
            return _login_page(request, errors, status=status)
        errors.append(_("The code is wrong or has expired."))
    return private(
        render(
            request,
            "contributions/me/code.html",
            {"errors": errors, "minutes": settings.SELF_SERVICE_CODE_MINUTES},
            status=status,
        )
    )


@require_POST
def me_logout(request: HttpRequest) -> HttpResponse:
    _end(request)
    return redirect("contributions:me")


def _participant_or_login(request: HttpRequest) -> Participant:
    participant = current(request)
    if participant is None:
        raise Http404
    return participant


@require_POST
def me_pay(request: HttpRequest) -> HttpResponse:
    """A bill for 1, 3, 6 or 12 months (the same open code while it lasts)."""
    participant = current(request)
    if participant is None:
        return redirect("contributions:me")
    try:
        months = int(request.POST.get("months", ""))
    except ValueError:
        months = 0
    context: dict[str, Any] = {"name": mask_name(participant.full_name), "where_to_pay": []}
    if months not in BILL_MONTHS:
        context["error"] = _("Choose 1, 3, 6 or 12 months.")
        return private(render(request, "contributions/me/bill.html", context, status=400))
    try:
        bill, _created = open_bill(participant=participant, months=months)
    except (BillError, PaymentError) as exc:
        context["error"] = exc.message
        return private(render(request, "contributions/me/bill.html", context, status=400))
    context.update(bill_display(bill))
    return private(render(request, "contributions/me/bill.html", context))


@require_http_methods(["GET"])
def me_receipt(request: HttpRequest, pk: int) -> HttpResponse:
    participant = _participant_or_login(request)
    payment = Payment.objects.filter(pk=pk, participant=participant).first()
    if payment is None:  # another participant's receipt does not exist for this session
        raise Http404
    return private(
        render(
            request,
            "contributions/me/receipt.html",
            {"payment": payment, "participant": participant},
        )
    )


@require_POST
def me_reminders(request: HttpRequest) -> HttpResponse:
    participant = current(request)
    if participant is None:
        return redirect("contributions:me")
    with transaction.atomic():
        if request.POST.get("reminders") == "off":
            opt_out(participant=participant, reason=_("stopped by the participant on their page"))
        else:
            opt_in(participant=participant)
    return redirect("contributions:me")


@require_POST
def me_autodebit(request: HttpRequest) -> HttpResponse:
    """Turn autodebit on (a bank or e-wallet and the account to debit) or off."""
    participant = current(request)
    if participant is None:
        return redirect("contributions:me")
    if request.POST.get("action") == "off":
        mandate = autodebit.active_mandate(participant)
        if mandate is not None:
            autodebit.cancel(mandate, by=AutodebitMandate.By.PARTICIPANT, reason=_("own page"))
        return redirect("contributions:me")
    try:
        autodebit.set_up(
            participant=participant,
            client=autodebit.channel_by_id(request.POST.get("channel", "")),
            account=request.POST.get("account", ""),
            by=AutodebitMandate.By.PARTICIPANT,
        )
    except autodebit.AutodebitError as exc:
        context = {
            **_home(participant),
            "autodebit_errors": [exc.message],
            "form_channel": request.POST.get("channel", ""),
            "form_account": request.POST.get("account", "")[:24],
        }
        return private(render(request, "contributions/me/home.html", context, status=400))
    return redirect("contributions:me")
