"""The follow-up queue's pages. Thin: scope (enrollment.permissions, `follow_up`), parse, call a
selector or the service, render. Bad filters are a 400 naming the problem; a participant outside
the scope is a 404; a refused outcome is a message on the queue, nothing written."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from enrollment import permissions
from enrollment.models import Region
from enrollment.permissions import Scope

from . import selectors
from .models import Outcome
from .services import FollowUpError, record_outcome

PAGE_SIZE = 25


def _filters(request: HttpRequest) -> tuple[str, str] | HttpResponse:
    status = (request.GET.get("status") or "").strip()
    village = (request.GET.get("village") or "").strip()
    if status and status not in selectors.STATUS_FILTERS:
        return HttpResponseBadRequest(
            _("Unknown status filter “%(value)s”: use one of %(choices)s.")
            % {"value": status, "choices": ", ".join(selectors.STATUS_FILTERS)}
        )
    if village and not Region.objects.filter(pk=village, level=Region.Level.VILLAGE).exists():
        return HttpResponseBadRequest(
            _("Unknown village “%(value)s”: give a village code such as 32.73.05.1001.")
            % {"value": village[:20]}
        )
    return status, village


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    """The follow-up queue (/arrears/): the participants to contact, most urgent first."""
    scope = permissions.scope_of(request.user, "follow_up")
    if scope == Scope.NONE:
        raise PermissionDenied(_("Your role may not do this."))
    parsed = _filters(request)
    if isinstance(parsed, HttpResponse):
        return parsed
    status, village = parsed
    today = timezone.localdate()
    qs = selectors.follow_up_queue(request.user, as_of=today, village=village, status=status)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = selectors.queue_rows(list(page.object_list), as_of=today)
    filters = urlencode({k: v for k, v in (("status", status), ("village", village)) if v})
    low, high = selectors.promise_window(today)
    return render(
        request,
        "contributions/arrears.html",
        {
            "page": page,
            "rows": rows,
            "status": status,
            "village": village,
            "villages": selectors.queue_villages(request.user),
            "status_choices": [
                ("grace", _("Grace period")),
                ("lapsed", _("Lapsed")),
                ("promised", _("Promised to pay")),
                ("out", _("Out of the queue (moved, died)")),
            ],
            "filters": filters,
            "back": reverse("contributions:arrears") + (f"?{filters}" if filters else ""),
            "outcomes": Outcome.choices,
            "today": today,
            "promise_min": low,
            "promise_max": high,
            "summary": (
                selectors.outcomes_per_month(request.user, as_of=today)
                if scope != Scope.OWN
                else None
            ),
        },
    )


def _back(request: HttpRequest, pk: int) -> str:
    """Back to the queue with the filters it had (only our own path is followed)."""
    back = request.POST.get("back") or ""
    base = reverse("contributions:arrears")
    if not (back == base or back.startswith(base + "?")):
        back = base
    return f"{back}#p{pk}"


@login_required
@require_POST
def record(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the outcome of a contact with participant `pk` (in the `follow_up` scope, else
    404); back to the queue with a message saying what was recorded or what was wrong."""
    participant = get_object_or_404(
        permissions.participants_in_scope(request.user, "follow_up"), pk=pk
    )
    outcome = request.POST.get("outcome") or ""
    raw_date = (request.POST.get("promised_date") or "").strip()
    promised: date | None = None
    # One form for every outcome: its date field counts only for a promise.
    if outcome == Outcome.PROMISED and raw_date:
        try:
            promised = date.fromisoformat(raw_date)
        except ValueError:
            messages.error(
                request,
                _("%(name)s: the promised date “%(value)s” is not a date (YYYY-MM-DD).")
                % {"name": participant.full_name, "value": raw_date[:20]},
            )
            return redirect(_back(request, pk))
    try:
        saved = record_outcome(
            participant=participant,
            outcome=outcome,
            recorded_by=request.user,
            promised_date=promised,
            note=request.POST.get("note") or "",
        )
    except FollowUpError as exc:
        messages.error(request, f"{participant.full_name}: {exc.message}")
    else:
        messages.success(
            request,
            _("%(name)s: recorded “%(outcome)s”.")
            % {"name": participant.full_name, "outcome": saved.get_outcome_display()},
        )
    return redirect(_back(request, pk))
