from typing import Any

from django.http import HttpRequest

from .selectors import staff_profile


def staff_role(request: HttpRequest) -> dict[str, Any]:
    profile = staff_profile(request.user) if hasattr(request, "user") else None
    return {"staff_profile": profile}
