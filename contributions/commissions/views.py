"""Commission pages. Thin: scope (enrollment.permissions, `view_commissions`), parse, call a
selector or service, render. A statement outside the user's scope is a 404; an action the role
lacks is a 403; a refused step is a message on the statement's page, never a 500."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from enrollment import permissions
from enrollment.permissions import Scope

from ..coverage import month_start
from . import exports, selectors
from .models import StatementStatus
from .services import CommissionError, approve_statement, mark_paid, parse_month

PAGE_SIZE = 25


def _require(request: HttpRequest, action: str) -> Scope:
    scope = permissions.scope_of(request.user, action)
    if scope == Scope.NONE:
        raise PermissionDenied(_("Your role may not do this."))
    return scope


@login_required
@require_GET
def commissions(request: HttpRequest) -> HttpResponse:
    """The statements in the user's scope, newest month first; an agent's earnings to date and
    this month's draft on top."""
    scope = _require(request, "view_commissions")
    everything = qs = selectors.statements_in_scope(request.user)
    month_text = request.GET.get("month", "").strip()
    month = None
    if month_text:
        try:
            month = parse_month(month_text)
        except CommissionError as exc:
            messages.error(request, str(exc.message))
        else:
            qs = qs.filter(month=month)
    status = request.GET.get("status", "")
    if status in StatementStatus.values:
        qs = qs.filter(status=status)
    # an agent's own figures, whatever the filter
    earnings = selectors.earnings_of(everything) if scope == Scope.OWN else None
    this_month = month_start(timezone.localdate())
    current = everything.filter(month=this_month).first() if scope == Scope.OWN else None
    page = Paginator(qs.order_by("-month", "kind", "id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "contributions/commissions/list.html",
        {
            "page": page,
            "earnings": earnings,
            "current": current,
            "this_month": this_month,
            "month": month,
            "status": status,
            "statuses": StatementStatus.choices,
            "can_approve": permissions.scope_of(request.user, "approve_commissions") != Scope.NONE,
            "can_export": permissions.scope_of(request.user, "export_commissions") != Scope.NONE,
        },
    )


@login_required
@require_GET
def statement(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, "view_commissions")
    st = get_object_or_404(selectors.statements_in_scope(request.user), pk=pk)
    return render(
        request,
        "contributions/commissions/statement.html",
        {
            "st": st,
            "lines": selectors.lines_of(st),
            "can_approve": permissions.scope_of(request.user, "approve_commissions") != Scope.NONE,
        },
    )


def _step(request: HttpRequest, pk: int, approve: bool) -> HttpResponse:
    _require(request, "approve_commissions")
    st = get_object_or_404(selectors.statements_in_scope(request.user), pk=pk)
    try:
        if approve:
            approve_statement(statement_id=st.pk, by=request.user)
            messages.success(request, _("The statement is approved."))
        else:
            mark_paid(
                statement_id=st.pk, by=request.user, reference=request.POST.get("reference", "")
            )
            messages.success(request, _("The statement is marked paid."))
    except CommissionError as exc:
        messages.error(request, str(exc.message))
    return redirect("contributions:commission_statement", pk=st.pk)


@login_required
@require_POST
def approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _step(request, pk, approve=True)


@login_required
@require_POST
def pay(request: HttpRequest, pk: int) -> HttpResponse:
    return _step(request, pk, approve=False)


@login_required
@require_GET
def export(request: HttpRequest, month: str, fmt: str) -> HttpResponse:
    """The approved and paid statements of a month, for the payout (admins)."""
    _require(request, "export_commissions")
    try:
        first = parse_month(month)
    except CommissionError as exc:
        return HttpResponseBadRequest(str(exc.message))
    if fmt == "csv":
        body, kind = exports.to_csv(first), "text/csv; charset=utf-8"
    elif fmt == "xlsx":
        body = exports.to_xlsx(first)
        kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        return HttpResponseBadRequest(_("The format is csv or xlsx."))
    response = HttpResponse(body, content_type=kind)
    response["Content-Disposition"] = f'attachment; filename="commissions-{first:%Y-%m}.{fmt}"'
    return response
