"""The shared shape of every API view: strict JSON in and out, NUL refused, one error format,
cursor pagination and integer parameters with clear errors. Authentication is each app's
(enrollment/api/base.py ApiView: API client tokens; reporting: sessions too)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from .errors import ApiError
from .parsers import StrictJSONParser


class BaseApiView(APIView):
    permission_classes = [IsAuthenticated]
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
        for key, values in request.query_params.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                raise ApiError("invalid_character", _("Parameters may not contain NUL."))
        super().initial(request, *args, **kwargs)


class ApiCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering = "-id"

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            return super().decode_cursor(request)
        except Exception as exc:  # DRF raises NotFound; a bad cursor is the client's 400
            raise ApiError("invalid_cursor", _("The page cursor is not valid.")) from exc

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 500):
            raise ApiError("page_size_invalid", _("page_size must be between 1 and 500."))
        size = super().get_page_size(request)
        return size if size is not None else self.page_size


def int_param(request: Request, name: str, *, required: bool = False) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if required:
            raise ApiError(
                f"{name}_required", _("The %(name)s parameter is required.") % {"name": name}
            )
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise ApiError(f"{name}_invalid", _("%(name)s must be a whole number.") % {"name": name})
    return int(raw)
