"""Contributions API views: quotes, payments, sponsor batches, the ledger, payment sync."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from bpjsportal.core.api.base import ApiCursorPagination, int_param
from bpjsportal.core.api.errors import ApiError, FieldError
from bpjsportal.core.api.sync import decode_token, encode_token, sync_page
from enrollment import permissions
from enrollment.api.base import ApiView
from enrollment.api.lookups import count_lookup
from enrollment.api.scopes import participants_for
from enrollment.api.serializers import ErrorSerializer
from enrollment.api.views import PAGE_SIZE, SYNC_PARAMS, sync_page_size
from enrollment.models import ApiClient, Occupation, PayerType
from enrollment.pii import mask_name

from .. import coverage as rules
from ..errors import BatchError, PaymentConflict, PaymentError
from ..models import Coverage, Payment, SuspenseItem
from ..quotes import quote_payment
from ..rates import MAX_MONTHS, PROGRAMMES, QUOTE_MESSAGES, QuoteError, quote_contribution
from ..services import check_payer_type, post_sponsor_batch, record_payment
from ..suspense import record_field_cash
from .payment_access import batch_access_for, participant_by_key, payment_access_for
from .serializers import (
    BatchInput,
    BatchSerializer,
    DueSerializer,
    LedgerEntrySerializer,
    PaginatedLedger,
    PaymentHeldSerializer,
    PaymentInput,
    PaymentSerializer,
    QuoteSerializer,
    SyncPaymentsOutput,
)

ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 404: ErrorSerializer, 429: ErrorSerializer}


class QuoteApi(ApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter("income", int, required=True),
            OpenApiParameter("programmes", str, description="JKK,JKM or JKK,JKM,JHT"),
            OpenApiParameter("months", {"type": "integer", "minimum": 1, "maximum": MAX_MONTHS}),
            OpenApiParameter("occupation", str, description="occupation code (sector discounts)"),
            OpenApiParameter(
                "payer_type",
                str,
                enum=list(PayerType.values),
                description="whose money pays (default self); budget-paid types (apbd, apbn, "
                "village_fund) pay the undiscounted rate in PP 50/2025 months",
            ),
        ],
        responses={200: QuoteSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        income = int_param(request, "income", required=True)
        months = int_param(request, "months")
        months = 1 if months is None else months
        programmes = [
            p.strip().upper()
            for p in request.query_params.get("programmes", "JKK,JKM").split(",")
            if p.strip()
        ][: len(PROGRAMMES) + 1]
        sector = "other"
        code = request.query_params.get("occupation")
        if code:
            occupation = Occupation.objects.filter(code=code[:32]).first()
            if occupation is None:
                raise ApiError("occupation_unknown", _("Unknown occupation."))
            sector = occupation.sector
        payer_type = request.query_params.get("payer_type", PayerType.SELF)
        try:
            check_payer_type(payer_type)
        except PaymentError as exc:
            raise ApiError(exc.code, exc.message) from exc
        assert income is not None
        try:
            quote = quote_contribution(
                declared_income=income,
                programmes=programmes,
                months=months,
                first_month=timezone.localdate(),
                sector=sector,
                payer_type=payer_type,
            )
        except QuoteError as exc:
            details: dict[str, Any] = {"nearest": exc.nearest} if exc.nearest else {}
            raise ApiError(exc.code, exc.message, **details) from exc
        return Response(
            {
                "declared_income": quote.declared_income,
                "payer_type": payer_type,
                "programmes": quote.programmes,
                "months": len(quote.months),
                "first_month": quote.months[0].month.isoformat(),
                "monthly": [
                    {"month": m.month.isoformat(), "amounts": m.amounts, "total": m.total}
                    for m in quote.months
                ],
                "per_programme": quote.per_programme,
                "total": quote.total,
            }
        )


class DueApi(ApiView):
    """What a cashier shows before taking the money: a masked name and the amount due."""

    @extend_schema(
        parameters=[
            OpenApiParameter("kpj", str, description="the participant's 11-digit KPJ number"),
            OpenApiParameter("nik", str, description="or the 16-digit NIK"),
            OpenApiParameter(
                "months",
                {"type": "integer", "minimum": 1, "maximum": MAX_MONTHS},
                description="months to pay (default: the months due now, at least 1)",
            ),
        ],
        responses={200: DueSerializer, 403: ErrorSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        client = self.client(request)
        if permissions.scope_of(client, "look_up_dues") == permissions.Scope.NONE:
            raise ApiError(
                "permission_denied",
                _("This API client may not look up dues."),
                status_code=status.HTTP_403_FORBIDDEN,
            )
        kpj = request.query_params.get("kpj", "")[:11]
        nik = request.query_params.get("nik", "")[:16]
        months = int_param(request, "months")
        if months is not None and not 1 <= months <= MAX_MONTHS:
            raise ApiError("months_out_of_range", QUOTE_MESSAGES["months_out_of_range"])
        count_lookup(client)
        participant = participant_by_key(client, kpj, nik, action="look_up_dues")
        cov = Coverage.objects.filter(pk=participant.pk).first()
        today = timezone.localdate()
        due_now = rules.months_due_now(
            paid_through=cov.paid_through if cov else None,
            start_month=cov.start_month if cov else rules.month_start(today),
            as_of=today,
        )
        try:
            # what this client would pay: a partner at its payer type's price (no credit on
            # account: that is the participant's own), anyone else at the participant's own
            payer_type = (
                client.partner.payer_type
                if client.scope == ApiClient.Scope.PARTNER and client.partner
                else PayerType.SELF
            )
            due = quote_payment(
                participant,
                cov,
                months=months or max(1, due_now),
                as_of=today,
                payer_type=payer_type,
            )
        except PaymentError as exc:
            raise payment_error(exc) from exc
        return Response(
            {
                "kpj_number": participant.kpj_number,
                "name": mask_name(participant.full_name),
                "months_due_now": min(due_now, MAX_MONTHS),
                "months": due.months,
                "first_month": due.first_month.isoformat(),
                "amount": due.amount,
            }
        )


def payment_error(exc: PaymentError) -> ApiError:
    if isinstance(exc, PaymentConflict):
        return ApiError(exc.code, exc.message, status_code=status.HTTP_409_CONFLICT)
    if exc.code == "participant_unknown":
        return ApiError(exc.code, exc.message, status_code=status.HTTP_404_NOT_FOUND)
    details: dict[str, Any] = {"expected": exc.expected} if exc.expected is not None else {}
    return ApiError(exc.code, exc.message, **details)


def held_body(item: SuspenseItem) -> dict[str, Any]:
    """The 202 answer for field cash held in suspense: the same for a repeat of the receipt
    (read off the item: its refusal as first answered)."""
    body: dict[str, Any] = {
        "result": "suspense",
        "code": item.refusal_code,
        "message": item.refusal_message,
        "suspense": {
            "id": item.pk,
            "amount": item.amount,
            "reference": item.reference,
            "paid_at": item.paid_at,
            "reason": item.reason,
        },
    }
    if item.expected is not None:
        body["expected"] = item.expected
    return dict(PaymentHeldSerializer(body).data)


class PaymentCreateApi(ApiView):
    """A payment: 201 posted, 200 the same payment again (channel and reference). An agent
    client's cash sent with on_conflict "suspense" that the participant's state refuses is held
    in suspense instead: 202, and 202 again for a repeat of the receipt (docs/api.md)."""

    @extend_schema(
        request=PaymentInput,
        responses={
            201: PaymentSerializer,
            200: PaymentSerializer,
            202: PaymentHeldSerializer,
            409: ErrorSerializer,
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        client = self.client(request)
        serializer = PaymentInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        hold = data.get("on_conflict") == "suspense"
        if hold and client.scope != ApiClient.Scope.AGENT:
            raise ApiError(
                "on_conflict_not_allowed",
                _(
                    'Only an agent client may send on_conflict "suspense" (field cash held for '
                    "the back office); this client's payments are refused when they cannot be "
                    "posted."
                ),
            )
        access = payment_access_for(
            client,
            kpj=data.get("kpj_number", ""),
            nik=data.get("nik", ""),
            channel=data.get("channel"),
            payer=data.get("payer"),
            payer_type=data.get("payer_type"),
        )
        common = {
            "participant": access.participant,
            "amount": data["amount"],
            "months": data["months"],
            "payer": access.payer,
            "channel": access.channel,
            "reference": data["reference"],
            "paid_at": data["paid_at"],
            "collected_by": access.collected_by,
        }
        try:
            if client.scope == ApiClient.Scope.AGENT:
                # field cash: a receipt held in suspense already is answered as such, whatever
                # on_conflict says (it is never posted a second time)
                done = record_field_cash(client=client, hold=hold, **common)
                if done.item is not None:
                    return Response(held_body(done.item), status=status.HTTP_202_ACCEPTED)
                assert done.payment is not None
                payment, created = done.payment, done.created
            else:
                payment, created = record_payment(
                    sponsor=access.sponsor, payer_type=access.payer_type, **common
                )
        except PaymentError as exc:
            if exc.code == "amount_mismatch":  # it answers what a look-up answers: counted
                count_lookup(client)
            raise payment_error(exc) from exc
        payment = Payment.objects.select_related("participant").get(pk=payment.pk)
        return Response(
            PaymentSerializer(payment).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class BatchCreateApi(ApiView):
    @extend_schema(
        request=BatchInput,
        responses={201: BatchSerializer, 200: BatchSerializer, 409: ErrorSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        client = self.client(request)
        serializer = BatchInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        access = batch_access_for(client, sponsor_code=data.get("sponsor"))
        requested = data.get("payer_type")
        if not access.admin_approval and requested not in (None, access.sponsor.payer_type):
            # the payer type sets the price: only an administrator says other than the partner's
            raise ApiError(
                "payer_type_not_allowed",
                _("This client's batches are paid by %(payer_type)s only.")
                % {"payer_type": access.sponsor.payer_type},
            )
        rows = [(r.get("kpj_number") or r.get("nik") or "", r["months"]) for r in data["rows"]]
        try:
            batch, created = post_sponsor_batch(
                sponsor=access.sponsor,
                reference=data["reference"],
                rows=rows,
                paid_at=data["paid_at"],
                total_amount=data.get("total_amount"),
                admin_approval=access.admin_approval,
                payer_type=data.get("payer_type"),
            )
        except BatchError as exc:
            code = status.HTTP_409_CONFLICT if exc.code == "reference_conflict" else 400
            raise ApiError(
                exc.code,
                exc.message,
                status_code=code,
                errors=[FieldError(f"rows.{r.row - 1}", r.code, r.message) for r in exc.rows],
            ) from exc
        batch = type(batch).objects.select_related("sponsor").get(pk=batch.pk)
        return Response(
            BatchSerializer(batch).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class LedgerApi(ApiView):
    @extend_schema(
        parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", PAGE_SIZE)],
        responses={200: PaginatedLedger, **ERRORS},
    )
    def get(self, request: Request, pk: int) -> Response:
        participant = get_object_or_404(participants_for(self.client(request)), pk=pk)
        paginator = ApiCursorPagination()
        qs = participant.ledger_entries.all()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(LedgerEntrySerializer(page, many=True).data)


def payments_for(client: ApiClient) -> QuerySet[Payment]:
    """The payments a client may sync (scope rules: enrollment/api/scopes.py)."""
    qs = Payment.objects.select_related("participant")
    if client.scope == ApiClient.Scope.ADMIN:
        return qs
    if client.scope == ApiClient.Scope.CHANNEL:
        return qs.filter(channel=client.payment_channel)
    condition = Q(participant__in=participants_for(client))
    if client.scope == ApiClient.Scope.PARTNER and client.partner is not None:
        condition |= Q(sponsor=client.partner)
    return qs.filter(condition)


class PaymentSyncApi(ApiView):
    @extend_schema(parameters=SYNC_PARAMS, responses={200: SyncPaymentsOutput, **ERRORS})
    def get(self, request: Request) -> Response:
        client = self.client(request)
        since = decode_token("payments", request.query_params.get("since"))
        page = sync_page(payments_for(client), since, sync_page_size(request))
        return Response(
            {
                "results": PaymentSerializer(page.rows, many=True).data,
                "next_token": encode_token("payments", page.next_position),
                "has_more": page.has_more,
            }
        )
