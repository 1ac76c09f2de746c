"""A strict JSON parser: a size limit read from the stream (not trusting Content-Length alone),
UTF-8 only, no NaN/Infinity, no duplicate keys. Anything else is a clear 4xx."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .errors import ApiError


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def too_large() -> ApiError:
    return ApiError(
        "request_too_large",
        _("The request body is larger than %(limit)s bytes.")
        % {"limit": settings.API_MAX_BODY_BYTES},
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    )


class StrictJSONParser(JSONParser):
    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit: int = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and str(length).isdigit() and int(length) > limit:
            raise too_large()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise too_large()
        try:
            text = raw.decode("utf-8")
            if "\x00" in text or "\\u0000" in text:
                raise ApiError("invalid_character", _("Text may not contain NUL characters."))
            return json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ParseError(str(exc)) from exc
