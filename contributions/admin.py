"""Back office for contributions. Money rows are never edited here: rate schedules get new
versions, payments are corrected by reversal entries (an action that asks for the reason),
batches and reconciliation files are posted through the same services as everything else."""

from __future__ import annotations

from typing import Any

from django import forms as django_forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enrollment import permissions
from enrollment.admin import LargeTableAdmin, RoleAdmin
from enrollment.models import Participant
from enrollment.permissions import can
from enrollment.selectors import search_by_nik

from . import autodebit, suspense
from .commissions import admin as commission_admin  # noqa: F401 - registers its pages
from .errors import BatchError, ContributionError, ImportFileError
from .forms import ImportUploadForm, ReversalForm, SponsorBatchForm
from .imports import import_payments
from .messaging.reminders import opt_out
from .models import (
    HOLDOUT_MAX_PERCENT,
    AutodebitCharge,
    AutodebitMandate,
    Bill,
    Coverage,
    Holiday,
    ImportReport,
    IncomeLevel,
    LedgerEntry,
    Payment,
    RateDiscount,
    RateSchedule,
    Reminder,
    ReminderAssignment,
    ReminderPreference,
    ReminderRule,
    Settlement,
    SettlementLine,
    SponsorBatch,
    SuspenseItem,
    SuspenseResolution,
)
from .services import post_sponsor_batch, reverse_payment
from .settlement import report_csv


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) else None


class AddOnlyAdmin(RoleAdmin):
    """New rows only: an existing row is shown read-only and cannot be deleted."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(RoleAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IncomeLevelInline(admin.TabularInline[IncomeLevel, RateSchedule]):
    model = IncomeLevel
    extra = 3

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RateSchedule)
class RateScheduleAdmin(AddOnlyAdmin):
    """A rate change is a new schedule with its own effective-from date and income levels."""

    permission_action = "manage_rates"
    list_display = ("effective_from", "jkk_rate_bp", "jkm_monthly", "jht_rate_bp", "created_by")
    inlines = [IncomeLevelInline]
    exclude = ("created_by",)

    def save_model(self, request: HttpRequest, obj: RateSchedule, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = _user(request)
        super().save_model(request, obj, form, change)


@admin.register(RateDiscount)
class RateDiscountAdmin(AddOnlyAdmin):
    permission_action = "manage_rates"
    list_display = ("name", "sector", "programmes", "percent", "first_month", "last_month")


@admin.register(Holiday)
class HolidayAdmin(RoleAdmin):
    """The due-date calendar (contributions/due_dates.py): add a decree's days, correct one when a
    decree is amended. Each change is audited; the cache of every process follows within
    RATES_CACHE_SECONDS (this one at once)."""

    permission_action = "manage_rates"
    list_display = ("day", "name", "kind", "updated_at")
    list_filter = ("kind",)
    date_hierarchy = "day"
    search_fields = ("name",)


@admin.register(Coverage)
class CoverageAdmin(ReadOnlyAdmin):
    list_display = ("participant", "status", "paid_through", "active_since", "lapsed_since")
    list_filter = ("status",)
    search_fields = ("participant__kpj_number",)  # and the NIK: get_search_results
    autocomplete_fields = ("participant",)
    show_full_result_count = False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        by_nik = search_by_nik(queryset, search_term, "participant__")  # NIK: digest index
        if by_nik is not None:
            return by_nik, False
        return super().get_search_results(request, queryset, search_term)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = ("id", "participant", "kind", "amount", "period_start", "months", "created_at")
    list_filter = ("kind",)
    search_fields = ("participant__kpj_number", "payment__reference")
    autocomplete_fields = ("participant", "payment", "reverses")
    show_full_result_count = False


def ask_reason(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Any],
    form: ReversalForm,
    *,
    action: str,
    title: str,
    intro: str,
    submit: str,
) -> HttpResponse:
    """The intermediate page of an admin action that needs a reason for the selected rows."""
    return render(
        request,
        "contributions/admin/ask_reason.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "intro": intro,
            "submit": submit,
            "rows": queryset,
            "form": form,
            "action": action,
            "opts": modeladmin.model._meta,
        },
    )


@admin.action(
    description=gettext_lazy("Reverse the selected payments (asks for a reason)"),
    permissions=["reverse"],
)
def reverse_payments(
    modeladmin: PaymentAdmin, request: HttpRequest, queryset: QuerySet[Payment]
) -> HttpResponse | None:
    form = ReversalForm(request.POST if "reason" in request.POST else None)
    if form.is_valid():
        done = 0
        for payment in queryset.order_by("-period_start", "-id"):  # latest first
            try:
                reverse_payment(
                    payment=payment, reason=form.cleaned_data["reason"], user=_user(request)
                )
            except ContributionError as exc:
                modeladmin.message_user(
                    request, f"{payment.reference}: {exc.message}", level=messages.ERROR
                )
            else:
                done += 1
        modeladmin.message_user(request, _("%(n)s payment(s) reversed.") % {"n": done})
        return None
    return ask_reason(
        modeladmin,
        request,
        queryset,
        form,
        action="reverse_payments",
        title=_("Reverse payments"),
        intro=_(
            "Each payment gets a reversal entry with this reason; its coverage is recomputed. "
            "The payment itself is kept."
        ),
        submit=_("Reverse"),
    )


@admin.register(Payment)
class PaymentAdmin(LargeTableAdmin, ReadOnlyAdmin):
    list_display = (
        "reference",
        "channel",
        "participant",
        "amount",
        "months",
        "period_start",
        "paid_at",
        "reversed",
    )
    list_filter = ("channel", "payer", "payer_type")
    search_fields = ("reference", "participant__kpj_number")
    autocomplete_fields = ("participant", "collected_by", "sponsor", "batch")
    actions = [reverse_payments]
    show_full_result_count = False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        by_nik = search_by_nik(queryset, search_term, "participant__")  # NIK: digest index
        if by_nik is not None:
            return by_nik, False
        return super().get_search_results(request, queryset, search_term)

    def has_reverse_permission(self, request: HttpRequest) -> bool:
        return can(request.user, "reverse_payment")

    @admin.display(boolean=True, description=gettext_lazy("reversed"))
    def reversed(self, obj: Payment) -> bool:
        return obj.entries.filter(kind=LedgerEntry.Kind.REVERSAL).exists()

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # The reversal action works although rows are read-only; deleting stays impossible.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(SponsorBatch)
class SponsorBatchAdmin(ReadOnlyAdmin):
    """Listed read-only; "add" posts a new batch through post_sponsor_batch."""

    list_display = (
        "reference",
        "sponsor",
        "payer_type",
        "row_count",
        "participant_months",
        "total_amount",
    )
    list_filter = ("payer_type",)
    search_fields = ("reference",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can(request.user, "post_sponsor_batch") and bool(
            request.user.has_perm("contributions.add_sponsorbatch")
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        form = SponsorBatchForm(request.POST or None)
        row_errors: list[Any] = []
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                batch, created = post_sponsor_batch(
                    sponsor=data["sponsor"],
                    reference=data["reference"],
                    rows=data["rows"],
                    paid_at=timezone.now(),
                    total_amount=data["total_amount"],
                    user=_user(request),
                    admin_approval=True,  # posting it here is an administrator's approval
                    payer_type=data["payer_type"] or None,
                )
            except BatchError as exc:
                form.add_error(None, exc.message)
                row_errors = exc.rows
            else:
                self.message_user(
                    request,
                    _("Batch posted: %(n)s payments.") % {"n": batch.row_count}
                    if created
                    else _("This batch was already posted."),
                )
                return HttpResponseRedirect(
                    reverse("admin:contributions_sponsorbatch_change", args=[batch.pk])
                )
        return render(
            request,
            "contributions/admin/upload.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Post a sponsor batch"),
                "form": form,
                "row_errors": row_errors,
                "opts": self.model._meta,
            },
            status=400 if form.errors else 200,
        )


@admin.register(ImportReport)
class ImportReportAdmin(ReadOnlyAdmin):
    """Listed read-only; "add" uploads a reconciliation file and imports it."""

    list_display = (
        "created_at",
        "filename",
        "channel",
        "rows",
        "matched",
        "duplicate",
        "unmatched",
        "amount_mismatch",
        "rejected",
    )
    list_filter = ("channel",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A reconciliation file posts payments for any participant: national record_payment.
        return permissions.scope_of(
            request.user, "record_payment"
        ) == permissions.Scope.NATIONAL and bool(
            request.user.has_perm("contributions.add_importreport")
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                report = import_payments(
                    upload.file,
                    channel=form.cleaned_data["channel"],
                    filename=upload.name or "upload.csv",
                    user=_user(request),
                )
            except ImportFileError as exc:
                form.add_error("file", str(exc.message))
            else:
                self.message_user(
                    request,
                    _(
                        "%(rows)s rows: %(matched)s posted, %(duplicate)s duplicate, "
                        "%(unmatched)s unmatched, %(mismatch)s amount mismatch, "
                        "%(rejected)s rejected."
                    )
                    % {
                        "rows": report.rows,
                        "matched": report.matched,
                        "duplicate": report.duplicate,
                        "unmatched": report.unmatched,
                        "mismatch": report.amount_mismatch,
                        "rejected": report.rejected,
                    },
                )
                return HttpResponseRedirect(
                    reverse("admin:contributions_importreport_change", args=[report.pk])
                )
        return render(
            request,
            "contributions/admin/upload.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Import a reconciliation file"),
                "form": form,
                "multipart": True,
                "opts": self.model._meta,
            },
            status=400 if form.errors else 200,
        )


# --- payment reminders -------------------------------------------------------------------------
class ReminderRuleForm(django_forms.ModelForm):
    """The holdout with one clear message for a value out of range (not Django's generic two)."""

    holdout_percent = django_forms.IntegerField(
        label=gettext_lazy("holdout (%)"),
        min_value=0,
        max_value=HOLDOUT_MAX_PERCENT,
        initial=0,
        error_messages={
            "required": gettext_lazy("Enter the holdout in percent (0 = no holdout)."),
            "invalid": gettext_lazy("The holdout must be a whole number of percent."),
            "min_value": gettext_lazy("The holdout must be between 0 and 50 percent."),
            "max_value": gettext_lazy("The holdout must be between 0 and 50 percent."),
        },
        help_text=gettext_lazy(
            "Percent of eligible participants who are not reminded, to measure whether the "
            "reminder works (0 = everyone is reminded; at most 50)."
        ),
    )

    class Meta:
        model = ReminderRule
        fields = ("kind", "offset_days", "enabled", "channel", "holdout_percent")


@admin.register(ReminderRule)
class ReminderRuleAdmin(RoleAdmin):
    permission_action = "view_reminder_plan"
    form = ReminderRuleForm
    list_display = ("kind", "offset_days", "enabled", "channel", "holdout_percent", "updated_at")
    list_editable = ("offset_days", "enabled", "channel", "holdout_percent")
    readonly_fields = ("updated_at",)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs.setdefault("form", ReminderRuleForm)
        return super().get_changelist_form(request, **kwargs)


@admin.action(description=gettext_lazy("Stop all reminders for these participants (opt-out)"))
def opt_out_participants(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    ids = set(queryset.values_list("participant_id", flat=True))
    for participant in Participant.objects.filter(pk__in=ids):
        opt_out(participant=participant, reason=_("marked in the admin"), user=request.user)
    modeladmin.message_user(request, _("%(n)d participants opted out.") % {"n": len(ids)})


@admin.register(Reminder)
class ReminderAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "participant",
        "kind",
        "period",
        "planned_for",
        "channel",
        "state",
        "attempts",
        "sent_at",
        "delivered_at",
    )
    list_filter = ("state", "kind", "channel", "planned_for")
    search_fields = ("participant__kpj_number", "gateway_message_id")
    autocomplete_fields = ("participant",)
    actions = [opt_out_participants]
    show_full_result_count = False


@admin.register(ReminderAssignment)
class ReminderAssignmentAdmin(ReadOnlyAdmin):
    """The recorded holdout arms (contributions/messaging/uplift.py): read only."""

    permission_action = "view_reminder_plan"
    list_display = ("participant", "rule", "period", "held_out", "holdout_percent", "assigned_on")
    list_filter = ("held_out", "rule", "period")
    search_fields = ("participant__kpj_number",)
    autocomplete_fields = ("participant",)
    show_full_result_count = False


@admin.register(ReminderPreference)
class ReminderPreferenceAdmin(RoleAdmin):
    permission_action = "manage_reminders"
    list_display = ("participant", "opted_out_at", "reason", "preferred_channel", "updated_at")
    list_filter = ("preferred_channel",)
    search_fields = ("participant__kpj_number",)
    autocomplete_fields = ("participant",)
    readonly_fields = ("updated_by", "updated_at")
    actions = [opt_out_participants]

    def save_model(
        self, request: HttpRequest, obj: ReminderPreference, form: Any, change: bool
    ) -> None:
        obj.updated_by = _user(request)
        super().save_model(request, obj, form, change)
        if obj.opted_out_at is not None:  # queued reminders stop too
            opt_out(participant=obj.participant, reason=obj.reason, user=request.user)


def _settle(
    modeladmin: SuspenseItemAdmin,
    request: HttpRequest,
    queryset: QuerySet[SuspenseItem],
    *,
    action: str,
    title: str,
    intro: str,
    submit: str,
) -> HttpResponse | None:
    """Settle each selected suspense item with one reason (contributions/suspense.py)."""
    form = ReversalForm(request.POST if "reason" in request.POST else None)
    if not form.is_valid():
        return ask_reason(
            modeladmin,
            request,
            queryset,
            form,
            action=f"{action}_suspense",
            title=title,
            intro=intro,
            submit=submit,
        )
    done = 0
    for item in queryset.order_by("created_at", "id"):
        try:
            suspense.resolve(
                item=item, action=action, reason=form.cleaned_data["reason"], user=_user(request)
            )
        except ContributionError as exc:
            modeladmin.message_user(
                request, f"{item.channel}:{item.reference}: {exc.message}", level=messages.ERROR
            )
        else:
            done += 1
    modeladmin.message_user(request, _("%(n)s suspense item(s) settled.") % {"n": done})
    return None


@admin.action(
    description=gettext_lazy("Apply the selected money to its participant (asks for a reason)"),
    permissions=["resolve"],
)
def apply_suspense(
    modeladmin: SuspenseItemAdmin, request: HttpRequest, queryset: QuerySet[SuspenseItem]
) -> HttpResponse | None:
    return _settle(
        modeladmin,
        request,
        queryset,
        action=SuspenseResolution.Action.APPLY,
        title=_("Apply suspense money"),
        intro=_(
            "Each amount is posted as a payment for the months it pays exactly, dated when the "
            "money was paid; an amount that pays no whole number of months is refused."
        ),
        submit=_("Apply"),
    )


@admin.action(
    description=gettext_lazy("Mark the selected money for refund (asks for a reason)"),
    permissions=["resolve"],
)
def refund_suspense(
    modeladmin: SuspenseItemAdmin, request: HttpRequest, queryset: QuerySet[SuspenseItem]
) -> HttpResponse | None:
    return _settle(
        modeladmin,
        request,
        queryset,
        action=SuspenseResolution.Action.REFUND,
        title=_("Refund suspense money"),
        intro=_("Each amount is marked for refund to the payer through its channel."),
        submit=_("Mark for refund"),
    )


@admin.register(SuspenseItem)
class SuspenseItemAdmin(ReadOnlyAdmin):
    """Money a channel paid for a bill that could not be applied on its own; settled once by
    the actions (append-only: the item never changes, its resolution is a new row)."""

    list_display = (
        "created_at",
        "channel",
        "reference",
        "participant",
        "amount",
        "reason",
        "settled",
    )
    list_filter = ("reason", "channel", ("resolution", admin.EmptyFieldListFilter))
    search_fields = ("reference", "participant__kpj_number")  # and a bill's code: below
    autocomplete_fields = ("participant", "client")
    raw_id_fields = ("bill",)  # bills have no admin page to search
    actions = [apply_suspense, refund_suspense]
    show_full_result_count = False

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return can(request.user, "resolve_suspense")

    @admin.display(description=gettext_lazy("settled"))
    def settled(self, obj: SuspenseItem) -> str:
        resolution = getattr(obj, "resolution", None)
        return resolution.get_action_display() if resolution else "—"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SuspenseItem], search_term: str
    ) -> tuple[QuerySet[SuspenseItem], bool]:
        """The search fields, or the bill's code: by a subquery of the bills, not a join on the
        bill's id (which a cluster refuses: the bill is found by its code, on any shard)."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        code = search_term.strip()
        if code:
            bills = Bill.objects.filter(code=code).values("id")
            found = found | queryset.filter(bill_id__in=bills)
        return found, duplicates

    def get_queryset(self, request: HttpRequest) -> QuerySet[SuspenseItem]:
        # the resolution by a second query (a join on the item's id would leave the
        # participant's node on a cluster)
        return (
            super()
            .get_queryset(request)
            .select_related("participant")
            .prefetch_related("resolution")
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class SettlementLineInline(admin.TabularInline[SettlementLine, Settlement]):
    model = SettlementLine
    fields = ("line", "reference", "code", "amount", "outcome", "detail", "participant")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.action(description=gettext_lazy("Download the report (CSV)"))
def settlement_csv(
    modeladmin: SettlementAdmin, request: HttpRequest, queryset: QuerySet[Settlement]
) -> HttpResponse:
    first = queryset.order_by("-day", "-id").first()
    assert first is not None  # the admin runs an action only on a selection
    response = HttpResponse(report_csv(first), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="settlement-{first.day}-{first.pk}.csv"'
    )
    return response


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    """Channel settlement files as reconciled (manage.py import_settlement): each line matched,
    recorded now, missing on either side, or a problem to follow up."""

    list_display = (
        "day",
        "client",
        "filename",
        "rows",
        "matched",
        "recorded",
        "missing_theirs",
        "problems",
    )
    list_filter = ("client",)
    date_hierarchy = "day"
    inlines = [SettlementLineInline]
    actions = [settlement_csv]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


# --- autodebit (contributions/autodebit.py) -------------------------------------------------
@admin.action(description=gettext_lazy("Cancel these autodebit mandates"))
def cancel_mandates(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Any]
) -> None:
    if not can(request.user, "record_payment"):
        modeladmin.message_user(request, _("You may not change mandates."), messages.ERROR)
        return
    done = sum(
        autodebit.cancel(m, by=AutodebitMandate.By.ADMIN, reason=_("cancelled in the admin"))
        for m in queryset.filter(status=AutodebitMandate.Status.ACTIVE)
    )
    modeladmin.message_user(request, _("%(n)d mandates cancelled.") % {"n": done})


class AutodebitChargeInline(admin.TabularInline[AutodebitCharge, AutodebitMandate]):
    model = AutodebitCharge
    fields = ("period", "key", "state", "attempts", "amount", "payment", "last_error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AutodebitMandate)
class AutodebitMandateAdmin(ReadOnlyAdmin):
    list_display = ("id", "participant", "client", "status", "set_up_by", "created_at")
    list_filter = ("status", "set_up_by", "client")
    search_fields = ("participant__kpj_number",)
    autocomplete_fields = ("participant", "agent")
    inlines = [AutodebitChargeInline]
    actions = [cancel_mandates]
    show_full_result_count = False


@admin.register(AutodebitCharge)
class AutodebitChargeAdmin(ReadOnlyAdmin):
    list_display = ("key", "participant", "period", "state", "attempts", "amount", "updated_at")
    list_filter = ("state", "period")
    search_fields = ("key", "participant__kpj_number", "channel_reference")
    autocomplete_fields = ("participant", "mandate", "payment")
    show_full_result_count = False
