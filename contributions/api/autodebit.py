"""The channel's side of autodebit (docs/api.md "Autodebit"): a channel cancels a mandate it
holds - the account holder stopped it at the bank or in the e-wallet - with a signed callback.
The rules are in contributions/autodebit.py."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from bpjsportal.core.api.errors import ApiError
from enrollment.api.base import ApiView
from enrollment.api.serializers import ErrorSerializer

from ..autodebit import cancel
from ..models import AutodebitMandate
from .bills import SIGNED, channel_only, signed_body
from .serializers import BillReversalInput
from .views import ERRORS


class MandateCancellationResult(serializers.Serializer[Any]):
    mandate = serializers.IntegerField()
    status = serializers.ChoiceField(choices=AutodebitMandate.Status.choices)
    cancelled_at = serializers.DateTimeField()
    cancelled_by = serializers.ChoiceField(choices=AutodebitMandate.By.choices)


class MandateCancellationApi(ApiView):
    """A channel cancels one of its own mandates, signed (X-Signature): 200 with the mandate's
    state (the same when it was cancelled before, by anyone); 404 mandate_unknown for a mandate
    that is not this channel's. Charges not made yet are cancelled with it."""

    @extend_schema(
        request=BillReversalInput,
        parameters=SIGNED,
        responses={200: MandateCancellationResult, 404: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request, pk: int) -> Response:
        client = channel_only(self.client(request))
        signed_body(request, client)
        serializer = BillReversalInput(data=request.data if request.body else {})
        serializer.is_valid(raise_exception=True)
        mandate = AutodebitMandate.objects.filter(pk=pk, client=client).first()
        if mandate is None:
            raise ApiError(
                "mandate_unknown",
                _("This channel holds no mandate with that number."),
                status_code=status.HTTP_404_NOT_FOUND,
            )
        cancel(
            mandate,
            by=AutodebitMandate.By.CHANNEL,
            reason=serializer.validated_data.get("reason", ""),
        )
        body = {
            "mandate": mandate.pk,
            "status": mandate.status,
            "cancelled_at": mandate.cancelled_at,
            "cancelled_by": mandate.cancelled_by,
        }
        return Response(MandateCancellationResult(body).data, status=status.HTTP_200_OK)
