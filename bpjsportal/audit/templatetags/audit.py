"""`{% audit_history object %}`: the audit trail of an object, for the admin's History page."""

from __future__ import annotations

from typing import Any

from django import template

from ..selectors import history_of, is_tracked

register = template.Library()


@register.inclusion_tag("audit/history_table.html")
def audit_history(obj: Any) -> dict[str, Any]:
    tracked = obj is not None and is_tracked(type(obj))
    return {"tracked": tracked, "entries": history_of(obj) if tracked else []}
