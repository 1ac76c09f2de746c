"""Browser pages of contributions. Thin: scope check, parse, call a service or selector, render.

Every page starts from enrollment.selectors.participants_visible_to (404 outside the scope)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from enrollment.models import Participant, StaffProfile
from enrollment.selectors import participants_visible_to, staff_profile

from . import selectors
from .errors import PaymentError
from .forms import CashPaymentForm
from .models import Payment
from .services import record_payment

PAGE_SIZE = 25


def _participant(request: HttpRequest, pk: int) -> Participant:
    return get_object_or_404(
        participants_visible_to(request.user).select_related("occupation", "village", "province"),
        pk=pk,
    )


def _profile(request: HttpRequest) -> StaffProfile:
    profile = staff_profile(request.user)
    if profile is None:
        raise Http404(_("You have no staff profile; ask an administrator."))
    return profile


@login_required
def record_cash(request: HttpRequest, pk: int) -> HttpResponse:
    """An agent records cash collected from the participant; success shows the receipt."""
    participant = _participant(request, pk)
    profile = _profile(request)
    form = CashPaymentForm(request.POST or None, participant=participant)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            payment, _created = record_payment(
                participant=participant,
                amount=data["amount"],
                months=data["months"],
                payer=Payment.Payer.AGENT,
                channel=Payment.Channel.AGENT,
                reference=f"CASH-{data['client_token']}",
                paid_at=timezone.now(),
                collected_by=profile,
            )
        except PaymentError as exc:
            form.add_error("amount" if exc.code == "amount_mismatch" else None, str(exc.message))
        else:
            return redirect("contributions:receipt", pk=payment.pk)
    status = 400 if form.errors else 200
    context = {"participant": participant, "cash_form": form, **_panel_facts(participant)}
    return render(request, "contributions/record_cash.html", context, status=status)


def _panel_facts(participant: Participant) -> dict[str, object]:
    facts = selectors.participant_panel(participant)
    facts.pop("cash_form", None)
    return facts


@login_required
@require_GET
def receipt(request: HttpRequest, pk: int) -> HttpResponse:
    payment = get_object_or_404(
        selectors.payments_visible_to(request.user).select_related(
            "participant", "collected_by__user"
        ),
        pk=pk,
    )
    return render(
        request,
        "contributions/receipt.html",
        {
            "payment": payment,
            "participant": payment.participant,
            "period_end": payment_period_end(payment),
            "coverage": selectors.coverage_of(payment.participant),
        },
    )


def payment_period_end(payment: Payment) -> object:
    from .rates import add_months

    return add_months(payment.period_start, payment.months - 1)


@login_required
@require_GET
def ledger(request: HttpRequest, pk: int) -> HttpResponse:
    participant = _participant(request, pk)
    page = Paginator(selectors.ledger_of(participant), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "contributions/ledger.html",
        {"participant": participant, "page": page, **_panel_facts(participant)},
    )


@login_required
@require_GET
def arrears(request: HttpRequest) -> HttpResponse:
    """The agent's (or branch's) participants in grace or lapsed, most urgent first."""
    page = Paginator(selectors.arrears_to_follow_up(request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "contributions/arrears.html", {"page": page})
