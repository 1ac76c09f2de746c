from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def dots(value: object) -> str:
    """12345678 -> 12.345.678 (Indonesian thousands separator); None -> an en dash."""
    if value is None or value == "":
        return "\u2013"
    try:
        number = round(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return f"{number:,}".replace(",", ".")
