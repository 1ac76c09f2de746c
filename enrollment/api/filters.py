"""The query filters of the API's list endpoints as django-filter FilterSets, so that every
filter is a parameter of the OpenAPI schema (drf-spectacular reads the FilterSet of a view's
`filterset_class`; docs/api.md "Filters").

They filter exactly as the hand-written filters before them did: a value is used as sent (not
stripped of spaces), cut to the longest value the column can hold, an empty value is the
parameter not sent, and of a repeated parameter the last value counts. `level` and `status`
refuse a value outside their list with the API's own error (`level_invalid`,
`status_invalid`, 400), not django-filter's form errors: every filter here is a text filter
that a form never refuses, and the filter method checks the value.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters.constants import EMPTY_VALUES
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework.request import Request

from bpjsportal.core.api.errors import ApiError

from ..models import Participant, Region, nik_q
from ..selectors import search_participants
from .serializers import LEVELS_BY_NAME

STATUSES = ("active", "grace", "lapsed")


class ExactFilter(django_filters.CharFilter):
    """An exact match on `field_name` with the value as sent, cut to `max_chars`."""

    def __init__(self, *args: Any, max_chars: int, **kwargs: Any) -> None:
        kwargs.setdefault("strip", False)  # a value with spaces matches nothing, as before
        super().__init__(*args, **kwargs)
        self.max_chars = max_chars

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if value in EMPTY_VALUES:
            return qs
        return qs.filter(**{self.field_name: value[: self.max_chars]})


def text_filter(method: str, help_text: str, **kwargs: Any) -> django_filters.CharFilter:
    """A text parameter filtered by a method of the FilterSet (the value as sent)."""
    return django_filters.CharFilter(method=method, help_text=help_text, strip=False, **kwargs)


def enum_filter(
    method: str, values: tuple[str, ...] | list[str], help_text: str
) -> django_filters.CharFilter:
    """A text parameter documented as an enum; the method refuses another value (the API's
    error code, not a form error)."""
    schema = {"type": "string", "enum": list(values), "description": help_text}
    return extend_schema_field(schema)(text_filter(method, help_text))


class RegionFilter(django_filters.FilterSet):
    level = enum_filter(
        "filter_level", list(LEVELS_BY_NAME), "province, regency, district or village"
    )
    parent = ExactFilter(
        field_name="parent_id",
        max_chars=13,
        help_text="the parent region's code: 32 (West Java), 32.73 (Kota Bandung), ...",
    )

    class Meta:
        model = Region
        fields: list[str] = []

    def filter_level(self, qs: QuerySet[Region], name: str, value: str) -> QuerySet[Region]:
        if value not in LEVELS_BY_NAME:
            raise ApiError(
                "level_invalid", _("level must be province, regency, district or village.")
            )
        return qs.filter(level=LEVELS_BY_NAME[value])


class ParticipantFilter(django_filters.FilterSet):
    """Filters of GET /participants/. The queryset must be decorated with the coverage status
    (enrollment.api.scopes.decorate_participants) for `status`."""

    province = ExactFilter(field_name="province_id", max_chars=32, help_text="province code: 32")
    regency = ExactFilter(field_name="regency_id", max_chars=32, help_text="regency code: 32.73")
    occupation = ExactFilter(
        field_name="occupation_id", max_chars=32, help_text="occupation code: petani"
    )
    partner = ExactFilter(field_name="partner__code", max_chars=32, help_text="partner code")
    agent = ExactFilter(
        field_name="registered_by__agent_code",
        max_chars=32,
        help_text="the registering agent's code",
    )
    kpj = ExactFilter(field_name="kpj_number", max_chars=11, help_text="11-digit KPJ number")
    nik = text_filter("filter_nik", "16-digit NIK (exact)")
    search = text_filter(
        "filter_search", "a NIK, a KPJ number, the start of a KPJ number or part of the name"
    )
    status = enum_filter("filter_status", STATUSES, "coverage status")

    class Meta:
        model = Participant
        fields: list[str] = []

    def filter_nik(self, qs: QuerySet[Participant], name: str, value: str) -> QuerySet[Participant]:
        return qs.filter(nik_q(value[:16]))

    def filter_search(
        self, qs: QuerySet[Participant], name: str, value: str
    ) -> QuerySet[Participant]:
        return search_participants(qs, value)

    def filter_status(
        self, qs: QuerySet[Participant], name: str, value: str
    ) -> QuerySet[Participant]:
        if value not in STATUSES:
            raise ApiError("status_invalid", _("status must be active, grace or lapsed."))
        return qs.filter(**{"coverage_status": value})  # annotated by contributions


def filter_for(request: Request, view: Any, qs: QuerySet[Any]) -> QuerySet[Any]:
    """`qs` filtered by the query parameters through the view's `filterset_class`, as a DRF
    generic view would (an invalid form, which no filter here has, is a 400
    validation_error)."""
    return DjangoFilterBackend().filter_queryset(request, qs, view)
