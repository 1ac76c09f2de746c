"""Browser pages of contributions. Thin: scope check, parse, call a service or selector, render.

Every page starts from enrollment.permissions.participants_in_scope (404 outside the scope)."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from enrollment import permissions
from enrollment.models import Participant, Partner, PayerType, StaffProfile
from enrollment.pii import mask_name
from enrollment.selectors import staff_profile

from . import panels, selectors
from .bills import open_bill
from .errors import ConsentError, ContributionError, PaymentError
from .forms import CashPaymentForm, SponsorConsentForm
from .messaging import pay_links, reminders, uplift
from .models import Coverage, Payment, Reminder, ReminderRule, SponsorConsent
from .private_pages import bill_display, private
from .rates import MAX_MONTHS, add_months
from .services import record_payment
from .sponsorship import grant_sponsor_consent, withdraw_sponsor_consent

PAGE_SIZE = 25


def participant_in_scope(
    request: HttpRequest, pk: int, action: str = "view_participants"
) -> Participant:
    """The participant, if `action` on it is in the user's scope (else 404)."""
    return get_object_or_404(
        permissions.participants_in_scope(request.user, action).select_related(
            "occupation", "village", "province"
        ),
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
    participant = participant_in_scope(request, pk, "record_payment")
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
                payer_type=data["payer_type"] or PayerType.SELF,
            )
        except PaymentError as exc:
            form.add_error("amount" if exc.code == "amount_mismatch" else None, str(exc.message))
        else:
            return redirect("contributions:receipt", pk=payment.pk)
    status = 400 if form.errors else 200
    context = {"participant": participant, "cash_form": form, **_panel_facts(participant)}
    return render(request, "contributions/record_cash.html", context, status=status)


def _panel_facts(participant: Participant) -> dict[str, object]:
    facts = panels.participant_panel(participant)
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
    return add_months(payment.period_start, payment.months - 1)


@login_required
@require_GET
def ledger(request: HttpRequest, pk: int) -> HttpResponse:
    participant = participant_in_scope(request, pk)
    page = Paginator(selectors.ledger_of(participant), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "contributions/ledger.html",
        {"participant": participant, "page": page, **_panel_facts(participant)},
    )


# --- payment reminders ---------------------------------------------------------------------------
@login_required
@require_GET
def reminders_today(request: HttpRequest) -> HttpResponse:
    """Staff only: the day's reminder plan and delivery figures per channel."""
    if not permissions.can(request.user, "view_reminder_plan"):
        raise PermissionDenied
    day = timezone.localdate()
    if request.GET.get("day"):
        try:
            day = date.fromisoformat(request.GET["day"])
        except ValueError:
            return HttpResponseBadRequest(_("day must be YYYY-MM-DD"))
    figures = reminders.day_figures(day)
    rules = ReminderRule.objects.order_by("kind")
    return render(
        request,
        "contributions/reminders_today.html",
        {
            "day": day,
            "figures": figures,
            "columns": reminders.FIGURE_COLUMNS,
            "rules": rules,
            "uplift": pay_links.uplift(day),
            "uplift_days": pay_links.WINDOW_DAYS,
        },
    )


@login_required
@require_GET
def reminders_uplift(request: HttpRequest) -> HttpResponse:
    """Whoever may see the reminder plan: per rule and due month, the payment rates of the
    reminded and held-out arms within 7 and 14 days, the difference and its 95 % interval
    (contributions/messaging/uplift.py); `?format=csv` downloads the same figures."""
    if not permissions.can(request.user, "view_reminder_plan"):
        raise PermissionDenied
    today = timezone.localdate()
    try:
        months = int(request.GET.get("months", "12"))
    except ValueError:
        months = 0
    if not 1 <= months <= 36:
        return HttpResponseBadRequest(_("months must be a whole number from 1 to 36"))
    rows = uplift.uplift_rows(today, months=months)
    if request.GET.get("format") == "csv":
        response = HttpResponse(uplift.uplift_csv(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="reminder-uplift-{today}.csv"'
        return response
    return render(
        request,
        "contributions/reminders_uplift.html",
        {
            "today": today,
            "months": months,
            "rows": rows,
            "rules": ReminderRule.objects.order_by("kind"),
            "min_arm": int(settings.REMINDER_UPLIFT_MIN_ARM),
        },
    )


@login_required
@require_POST
def reminder_opt_out(request: HttpRequest, pk: int) -> HttpResponse:
    """An agent or admin marks that the participant wants no more reminders (or wants them
    again with `opt_in=1`)."""
    participant = participant_in_scope(request, pk, "manage_reminders")
    if request.POST.get("opt_in") == "1":
        reminders.opt_in(participant=participant, user=request.user)
        messages.success(request, _("Reminders switched on again."))
    else:
        reason = (request.POST.get("reason") or "").strip() or _("marked by staff")
        reminders.opt_out(participant=participant, reason=reason, user=request.user)
        messages.success(request, _("No more reminders will be sent to this participant."))
    return redirect("enrollment:participant", pk=participant.pk)


@csrf_exempt
@require_POST
def gateway_callback(request: HttpRequest) -> JsonResponse:
    """The SMS/WhatsApp gateway's callback: delivery reports and inbound messages (STOP).
    Authenticated by X-Signature = hex HMAC-SHA256 of "<X-Timestamp>." + body under
    REMINDER_CALLBACK_SECRET, signed within REMINDER_CALLBACK_MAX_AGE seconds of now.
    401 bad signature or expired (a replay), 400 malformed, 404 unknown message or sender;
    never a 500 for bad input."""
    body = request.body
    refused = reminders.callback_refusal(
        body, request.headers.get("X-Timestamp", ""), request.headers.get("X-Signature", "")
    )
    if refused:
        return JsonResponse({"error": refused}, status=401)
    try:
        data = reminders.parse_callback(body)
        if data["type"] == "status":
            reminder = reminders.record_delivery_status(
                message_id=data["message_id"],
                status=data["status"],
                error=str(data.get("error") or ""),
            )
            return JsonResponse({"ok": True, "state": reminder.state})
        count = reminders.handle_inbound(sender=data["from"], text=data["text"])
        return JsonResponse({"ok": True, "opted_out": count})
    except reminders.ReminderError as exc:
        status = 400 if exc.code == "malformed" else 404
        return JsonResponse({"error": exc.code, "message": exc.message}, status=status)


@login_required
@require_POST
def sponsor_consent(request: HttpRequest, pk: int) -> HttpResponse:
    """Record a sponsor's leave to pay for the participant: the participant's consent confirmed
    in person by field staff, or - from an administrator - an approval."""
    participant = participant_in_scope(request, pk, "manage_sponsor_consent")
    form = SponsorConsentForm(request.POST, participant=participant)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect(f"{participant_url(participant)}#sponsors")
    national = permissions.scope_of(request.user, "manage_sponsor_consent")
    method = (
        SponsorConsent.Method.ADMIN
        if national == permissions.Scope.NATIONAL
        else SponsorConsent.Method.IN_PERSON
    )
    user = request.user if isinstance(request.user, User) else None
    try:
        _consent, created = grant_sponsor_consent(
            participant=participant,
            sponsor=form.cleaned_data["sponsor"],
            method=method,
            user=user,
            note=form.cleaned_data["note"],
        )
    except ConsentError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(
            request,
            _("%(sponsor)s may now pay this participant's contributions.")
            % {"sponsor": form.cleaned_data["sponsor"].name}
            if created
            else _("This sponsor already had the participant's consent."),
        )
    return redirect(f"{participant_url(participant)}#sponsors")


@login_required
@require_POST
def sponsor_consent_withdraw(request: HttpRequest, pk: int, sponsor_pk: int) -> HttpResponse:
    participant = participant_in_scope(request, pk, "manage_sponsor_consent")
    sponsor = get_object_or_404(Partner, pk=sponsor_pk)
    user = request.user if isinstance(request.user, User) else None
    if withdraw_sponsor_consent(participant=participant, sponsor=sponsor, user=user):
        messages.success(
            request,
            _("%(sponsor)s may no longer pay for this participant.") % {"sponsor": sponsor.name},
        )
    return redirect(f"{participant_url(participant)}#sponsors")


def participant_url(participant: Participant) -> str:
    return str(reverse("enrollment:participant", args=[participant.pk]))


# --- pay links (public: from a reminder; contributions/messaging/pay_links.py) ----------
def _pay_page(request: HttpRequest, context: dict[str, object], status: int = 200) -> HttpResponse:
    response = render(request, "contributions/pay.html", context, status=status)
    return private(response, no_referrer=True)


@require_GET
def pay_link(request: HttpRequest, token: str) -> HttpResponse:
    """What a reminder's link opens: the masked name, the amount due now and a bill for it (code,
    QR, where to pay). No login; nothing else about the participant is shown."""
    link = pay_links.read_token(token)
    reminder = (
        Reminder.objects.select_related("participant__occupation")
        .filter(pk=link.reminder_id)
        .first()
        if link is not None
        else None
    )
    if link is None or reminder is None:
        return _pay_page(request, {"problem": "invalid"}, status=404)
    if link.expired:
        return _pay_page(request, {"problem": "expired"}, status=410)
    participant = reminder.participant
    pay_links.note_visit(reminder)
    cov = Coverage.objects.filter(pk=participant.pk).first()
    due = selectors.amount_due_now(participant, cov, timezone.localdate())
    months, amount = due.get("months"), due.get("amount")
    bill = None
    if isinstance(months, int) and months > 0 and amount:
        try:
            bill, _created = open_bill(participant=participant, months=min(months, MAX_MONTHS))
        except ContributionError:
            bill = None
    return _pay_page(
        request,
        {
            "name": mask_name(participant.full_name),
            "due": due,
            **bill_display(bill),
            "status": cov.status if cov else "",
        },
    )
