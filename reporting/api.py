"""GET /api/v1/reports/progress/?year=YYYY (&province, occupation, partner): the dashboard's
headline figures, series and projection, from the same selector as the page."""

from __future__ import annotations

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors


class ProgressApi(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        scope = selectors.scope_for(request.user)
        if scope is None or not scope.dashboard:
            raise PermissionDenied
        f = selectors.parse_filters(request.query_params, scope)
        return Response(selectors.progress(f).as_dict())
