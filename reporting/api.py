"""GET /api/v1/reports/progress/?year=YYYY (&as_of, province, occupation, partner): the
dashboard's headline figures, series and projection, from the same selector as the page.

The page forgives a bad filter (it falls back to the default); the API refuses it with a 400
naming the parameter, so a client learns of its mistake and the OpenAPI schema is true: what
the schema refuses, the API refuses (tests/api/test_schema.py runs schemathesis on it). An
empty parameter is the parameter not sent."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bpjsportal.core.api.errors import ApiError
from bpjsportal.core.routers import use_replica
from enrollment import permissions
from enrollment.api import schema as doc
from enrollment.api.auth import ApiTokenAuthentication, ClientRateThrottle
from enrollment.models import ApiClient

from . import selectors

YEARS = (
    2000,
    2100,
)  # a year outside the rollups' range is refused; inside it, clamped as on the page
PARTNER_IDS = (1, 2**31 - 1)
CODE_PATTERN = r"^[0-9A-Za-z._-]{1,32}$"
_INTEGER = re.compile(r"-?[0-9]{1,12}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CODE = re.compile(CODE_PATTERN[1:-1])

PARAMETERS = [
    OpenApiParameter(
        "year",
        {"type": "integer", "minimum": YEARS[0], "maximum": YEARS[1]},
        description="default: this year (later years count as at most five years ahead)",
    ),
    OpenApiParameter(
        "as_of",
        OpenApiTypes.DATE,
        description="the figures' day (default: today, or the year's last day); a day in the "
        "future or before 2000 is ignored",
    ),
    OpenApiParameter(
        "province",
        {"type": "string", "pattern": CODE_PATTERN},
        description="province code, e.g. 32 (a regional administrator gets their own)",
    ),
    OpenApiParameter(
        "occupation", {"type": "string", "pattern": CODE_PATTERN}, description="occupation code"
    ),
    OpenApiParameter(
        "partner",
        {"type": "integer", "minimum": PARTNER_IDS[0], "maximum": PARTNER_IDS[1]},
        description="partner id",
    ),
]


# reporting.projection.project's statuses
PROJECTION_STATUSES = ("no_target", "no_data", "reached", "on_track", "behind")


class CollectionsSerializer(serializers.Serializer[Any]):
    JKK = serializers.IntegerField()
    JKM = serializers.IntegerField()
    JHT = serializers.IntegerField()
    other = serializers.IntegerField()
    total = serializers.IntegerField()


class ProjectionSerializer(serializers.Serializer[Any]):
    """reporting.projection.Projection."""

    target = serializers.IntegerField(allow_null=True)
    active = serializers.IntegerField()
    gap = serializers.IntegerField(allow_null=True, help_text="negative once the target is passed")
    percent_of_target = serializers.FloatField(allow_null=True)
    remaining_months = serializers.FloatField(help_text="from the figures' day to 31 December")
    required_monthly = serializers.IntegerField(
        allow_null=True, help_text="net growth a month needed to reach the target by year end"
    )
    run_rate = serializers.FloatField(
        allow_null=True, help_text="net growth a month over the last three months"
    )
    projected_year_end = serializers.IntegerField(allow_null=True)
    reached_on = serializers.DateField(
        allow_null=True, help_text="the day the target is (or was) reached at the current rate"
    )
    status = serializers.ChoiceField(choices=PROJECTION_STATUSES)


class ProgressMonthSerializer(serializers.Serializer[Any]):
    month = serializers.RegexField(r"^[0-9]{4}-[0-9]{2}$", help_text="YYYY-MM")
    actual = serializers.IntegerField(allow_null=True, help_text="active at the month's end")
    target = serializers.IntegerField(allow_null=True, help_text="the target path")
    projected = serializers.IntegerField(allow_null=True)


class ProgressSerializer(serializers.Serializer[Any]):
    """reporting.selectors.Progress.as_dict(): the dashboard's headline figures."""

    year = serializers.IntegerField()
    as_of = serializers.DateField()
    data_day = serializers.DateField(
        allow_null=True, help_text="the latest built day on or before as_of (none: no data)"
    )
    filters = serializers.DictField(
        child=serializers.CharField(), help_text="the filters applied, as query parameters"
    )
    registered = serializers.IntegerField()
    active = serializers.IntegerField()
    grace = serializers.IntegerField()
    lapsed = serializers.IntegerField()
    active_rate = serializers.FloatField(allow_null=True, help_text="active / registered")
    new_registrations = serializers.IntegerField(help_text="this year to the figures' day")
    reactivations = serializers.IntegerField()
    lapses = serializers.IntegerField()
    payments = serializers.IntegerField()
    collections = CollectionsSerializer(help_text="Rupiah collected this year, by programme")
    target = serializers.IntegerField(allow_null=True)
    starting_point = serializers.IntegerField(help_text="active at the start of the year")
    projection = ProjectionSerializer()
    series = ProgressMonthSerializer(many=True)


PROGRESS_EXAMPLE = {
    "year": 2026,
    "as_of": "2026-11-26",
    "data_day": "2026-11-26",
    "filters": {"year": "2026", "province": "32"},
    "registered": 5120,
    "active": 3640,
    "grace": 1100,
    "lapsed": 380,
    "active_rate": 0.7109,
    "new_registrations": 2310,
    "reactivations": 140,
    "lapses": 420,
    "payments": 21880,
    "collections": {
        "JKK": 98000000,
        "JKM": 66640000,
        "JHT": 12000000,
        "other": 0,
        "total": 176640000,
    },
    "target": 4500,
    "starting_point": 2100,
    "projection": {
        "target": 4500,
        "active": 3640,
        "gap": 860,
        "percent_of_target": 80.89,
        "remaining_months": 1.15,
        "required_monthly": 748,
        "run_rate": 152.4,
        "projected_year_end": 3815,
        "reached_on": "2027-05-17",
        "status": "behind",
    },
    "series": [
        {"month": "2026-01", "actual": 2240, "target": 2300, "projected": None},
        {"month": "2026-12", "actual": None, "target": 4500, "projected": 3815},
    ],
}


def _in_range(raw: str, bounds: tuple[int, int]) -> bool:
    return bool(_INTEGER.fullmatch(raw)) and bounds[0] <= int(raw) <= bounds[1]


def _is_date(raw: str) -> bool:
    if not _DATE.fullmatch(raw):
        return False
    try:
        date.fromisoformat(raw)
    except ValueError:
        return False
    return True


def check_parameters(params: Any) -> None:
    """ApiError 400 `<name>_invalid` for the first parameter the schema would refuse."""
    checks: dict[str, tuple[Callable[[str], bool], str]] = {
        "year": (
            lambda raw: _in_range(raw, YEARS),
            _("year must be a whole number from %(low)s to %(high)s.")
            % {"low": YEARS[0], "high": YEARS[1]},
        ),
        "as_of": (_is_date, _("as_of must be a date written YYYY-MM-DD.")),
        "province": (
            lambda raw: bool(_CODE.fullmatch(raw)),
            _("province must be a province code such as 32."),
        ),
        "occupation": (
            lambda raw: bool(_CODE.fullmatch(raw)),
            _("occupation must be an occupation code such as petani."),
        ),
        "partner": (
            lambda raw: _in_range(raw, PARTNER_IDS),
            _("partner must be a partner id (a whole number)."),
        ),
    }
    for name, (valid, message) in checks.items():
        for raw in params.getlist(name):
            if raw != "" and not valid(raw):
                raise ApiError(f"{name}_invalid", message)


class ProgressApi(APIView):
    """Staff sessions (scope from their role) and API clients with the admin scope; other API
    scopes get no national figures."""

    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ClientRateThrottle]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="reports_progress_retrieve",
        tags=[doc.REPORTING],
        summary="Progress toward the active-participant target",
        description="The dashboard's headline figures, monthly series and projection for a "
        "year and a cut (docs/reporting.md), from the nightly rollups. Staff sessions (their "
        "role's scope) and admin API clients; a parameter the schema refuses is 400 "
        "`<name>_invalid`, an empty one is the parameter not sent.",
        parameters=PARAMETERS,
        responses={
            200: doc.ok(
                ProgressSerializer,
                "The figures.",
                doc.response_example("West Java", PROGRESS_EXAMPLE),
            ),
            400: doc.error(
                "A parameter is refused: `year_invalid`, `as_of_invalid`, `province_invalid`, "
                "`occupation_invalid`, `partner_invalid`.",
                doc.error_example("year_invalid", "year must be a whole number from 2000 to 2100."),
            ),
        },
    )
    @use_replica  # after authentication (DRF's initial()); reads may use the replica
    def get(self, request: Request) -> Response:
        who = request.auth if isinstance(request.auth, ApiClient) else request.user
        scope = selectors.scope_for(who)
        if scope is None or not permissions.can(who, "view_dashboard"):
            raise PermissionDenied
        check_parameters(request.query_params)
        f = selectors.parse_filters(request.query_params, scope)
        return Response(selectors.progress(f).as_dict())
