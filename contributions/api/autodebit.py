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
from enrollment.api import schema as doc
from enrollment.api.base import ApiView

from ..autodebit import cancel
from ..models import AutodebitMandate
from .bills import NOT_A_CHANNEL, SIGNATURE_INVALID, SIGNED, channel_only, signed_body
from .serializers import BillReversalInput


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
        operation_id="autodebit_mandates_cancellation_create",
        tags=[doc.AUTODEBIT],
        summary="Cancel an autodebit mandate (channel, signed)",
        description="A payment channel cancels a mandate it holds (the account holder stopped "
        "it at the bank or in the e-wallet), signed with X-Signature; charges not made yet "
        "are cancelled with it. A mandate cancelled before answers the same.",
        request=BillReversalInput,
        parameters=SIGNED,
        examples=[doc.request_example("stopped at the bank", {"reason": "stopped by the holder"})],
        responses={
            200: doc.ok(
                MandateCancellationResult,
                "The mandate's state: cancelled.",
                doc.response_example(
                    "cancelled",
                    {
                        "mandate": 12,
                        "status": "cancelled",
                        "cancelled_at": "2026-12-04T03:10:00Z",
                        "cancelled_by": "channel",
                    },
                ),
            ),
            401: SIGNATURE_INVALID,
            403: NOT_A_CHANNEL,
            404: doc.error(
                "This channel holds no mandate with that number (`mandate_unknown`).",
                doc.error_example(
                    "mandate_unknown", "This channel holds no mandate with that number."
                ),
            ),
        },
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
