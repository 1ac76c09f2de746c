"""Back office for commissions: the rules (data an admin corrects without a release), Perisai
offices and their members, the NIKs known from before (read-only; loaded by a command), and
the statements (read-only; approved and marked paid through the services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from enrollment.admin import RoleAdmin

from .models import (
    CommissionLine,
    CommissionRule,
    CommissionStatement,
    PerisaiMembership,
    PerisaiOffice,
    PriorBpuNik,
)
from .services import CommissionError, approve_statement, mark_paid


@admin.register(CommissionRule)
class CommissionRuleAdmin(RoleAdmin):
    permission_action = "approve_commissions"
    list_display = (
        "name",
        "effective_from",
        "effective_to",
        "fee_jkk_jkm",
        "fee_with_jht",
        "min_new_niks",
        "band1_rate_bp",
        "band2_rate_bp",
        "office_share_bp",
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MembershipInline(admin.TabularInline[PerisaiMembership, PerisaiOffice]):
    model = PerisaiMembership
    extra = 1
    autocomplete_fields = ("agent",)


@admin.register(PerisaiOffice)
class PerisaiOfficeAdmin(RoleAdmin):
    permission_action = "approve_commissions"
    list_display = ("code", "name", "branch")
    search_fields = ("code", "name")
    inlines = [MembershipInline]


@admin.register(PriorBpuNik)
class PriorBpuNikAdmin(RoleAdmin):
    list_display = ("first_registered_on", "source", "loaded_at")
    list_filter = ("source",)
    exclude = ("nik_digest",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LineInline(admin.TabularInline[CommissionLine, CommissionStatement]):
    model = CommissionLine
    fk_name = "statement"
    extra = 0
    fields = ("kind", "participant", "covered_from", "months", "base", "rate_bp", "amount", "note")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _each(request: HttpRequest, queryset: QuerySet[CommissionStatement], step: Any) -> None:
    done = 0
    for st in queryset.order_by("id"):
        try:
            step(statement_id=st.pk, by=request.user)
            done += 1
        except CommissionError as exc:
            messages.error(request, f"#{st.pk}: {exc.message}")
    if done:
        messages.success(request, gettext_lazy("%(n)d statement(s) done.") % {"n": done})


@admin.action(description=gettext_lazy("Approve the selected statements"))
def approve_statements(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[CommissionStatement]
) -> None:
    _each(request, queryset, approve_statement)


@admin.action(description=gettext_lazy("Mark the selected statements paid"))
def pay_statements(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[CommissionStatement]
) -> None:
    _each(request, queryset, mark_paid)


@admin.register(CommissionStatement)
class CommissionStatementAdmin(RoleAdmin):
    permission_action = "approve_commissions"
    list_display = ("month", "kind", "agent", "office", "status", "total")
    list_filter = ("status", "kind", "month")
    inlines = [LineInline]
    actions = [approve_statements, pay_statements]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions
