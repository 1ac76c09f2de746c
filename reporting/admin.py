"""Back office: targets (every save appends a TargetVersion), versions and rollup days read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from enrollment.admin import RoleAdmin

from .models import RollupDay, Target, TargetBreakdown, TargetMilestone, TargetVersion
from .targets import record_version


class MilestoneInline(admin.TabularInline):
    model = TargetMilestone
    extra = 0


class BreakdownInline(admin.TabularInline):
    model = TargetBreakdown
    extra = 0


@admin.register(Target)
class TargetAdmin(RoleAdmin):
    permission_action = "manage_targets"
    list_display = ["year", "active_target", "starting_point", "updated_at", "updated_by"]
    inlines = [MilestoneInline, BreakdownInline]
    exclude = ["updated_by"]

    def save_model(self, request: HttpRequest, obj: Target, form: Any, change: bool) -> None:
        obj.updated_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        record_version(form.instance, user=request.user, source="admin")  # type: ignore[arg-type]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TargetVersion)
class TargetVersionAdmin(RoleAdmin):
    list_display = ["year", "version", "changed_at", "changed_by", "source"]
    list_filter = ["year", "source"]
    readonly_fields = ["year", "version", "state", "changed_by", "changed_at", "source"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RollupDay)
class RollupDayAdmin(RoleAdmin):
    list_display = ["day", "built_at", "seconds"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
