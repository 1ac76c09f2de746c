"""GET /api/v1/reports/progress/?year=YYYY (&province, occupation, partner): the dashboard's
headline figures, series and projection, from the same selector as the page."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors


class ProgressApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("year", int, description="default: this year"),
            OpenApiParameter("province", str, description="province code, e.g. 32"),
            OpenApiParameter("occupation", str, description="occupation code"),
            OpenApiParameter("partner", int, description="partner id"),
        ],
        responses=OpenApiTypes.OBJECT,
        description="Headline figures, monthly series and projection (docs/reporting.md).",
    )
    def get(self, request: Request) -> Response:
        scope = selectors.scope_for(request.user)
        if scope is None or not scope.dashboard:
            raise PermissionDenied
        f = selectors.parse_filters(request.query_params, scope)
        return Response(selectors.progress(f).as_dict())
