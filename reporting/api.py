"""GET /api/v1/reports/progress/?year=YYYY (&province, occupation, partner): the dashboard's
headline figures, series and projection, from the same selector as the page."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bpjsportal.routers import use_replica
from enrollment import permissions
from enrollment.api.auth import ApiTokenAuthentication, ClientRateThrottle
from enrollment.models import ApiClient

from . import selectors


class ProgressApi(APIView):
    """Staff sessions (scope from their role) and API clients with the admin scope; other API
    scopes get no national figures."""

    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [ClientRateThrottle]

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
    @use_replica  # after authentication (DRF's initial()); reads may use the replica
    def get(self, request: Request) -> Response:
        who = request.auth if isinstance(request.auth, ApiClient) else request.user
        scope = selectors.scope_for(who)
        if scope is None or not permissions.can(who, "view_dashboard"):
            raise PermissionDenied
        f = selectors.parse_filters(request.query_params, scope)
        return Response(selectors.progress(f).as_dict())
