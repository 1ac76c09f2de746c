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
from enrollment.api import schema as doc
from enrollment.api.base import ApiView
from enrollment.api.lookups import count_lookup
from enrollment.api.scopes import participants_for
from enrollment.api.views import PAGE_PARAMS, SYNC_BAD_TOKEN, SYNC_PARAMS, sync_page_size
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

PAYMENT = {
    "id": 9911,
    "participant": 42,
    "kpj_number": doc.KPJ,
    "amount": 16800,
    "months": 1,
    "period_start": "2026-12-01",
    "channel": "bank",
    "reference": "BRI-20261203-000123",
    "paid_at": "2026-12-03T02:41:00Z",
    "payer": "participant",
    "payer_type": "self",
    "reactivation": False,
    "created_at": "2026-12-03T02:41:05Z",
}
PARTICIPANT_UNKNOWN = doc.error(
    "No participant with this KPJ number or NIK within the client's scope "
    "(`participant_unknown`); a channel's miss counts as a look-up.",
    doc.error_example(
        "participant_unknown", "No participant with this KPJ/NIK is visible to this client."
    ),
)
REFERENCE_CONFLICT = doc.error(
    "The reference was used before for a different payment (`reference_conflict`).",
    doc.error_example(
        "reference_conflict",
        "Reference BRI-20261203-000123 of channel bank is already used by a different payment.",
    ),
)


class QuoteApi(ApiView):
    @extend_schema(
        operation_id="quotes_retrieve",
        tags=[doc.PAYMENTS],
        summary="Quote contributions",
        description="What a declared income's programmes cost a month, from this month, with "
        "the discounts of the sector and of who pays. An income that is not a level of the "
        "schedule is 400 `income_not_level` naming the `nearest` levels.",
        parameters=[
            OpenApiParameter(
                "income", int, required=True, description="declared monthly income (Rupiah)"
            ),
            OpenApiParameter("programmes", str, description="JKK,JKM or JKK,JKM,JHT"),
            OpenApiParameter(
                "months",
                {"type": "integer", "minimum": 1, "maximum": MAX_MONTHS},
                description="months to quote (default 1)",
            ),
            OpenApiParameter("occupation", str, description="occupation code (sector discounts)"),
            OpenApiParameter(
                "payer_type",
                str,
                enum=list(PayerType.values),
                description="whose money pays (default self); budget-paid types (apbd, apbn, "
                "village_fund) pay the undiscounted rate in PP 50/2025 months",
            ),
        ],
        responses={
            200: doc.ok(
                QuoteSerializer,
                "The quote.",
                doc.response_example(
                    "two months",
                    {
                        "declared_income": 1000000,
                        "payer_type": "self",
                        "programmes": ["JKK", "JKM"],
                        "months": 2,
                        "first_month": "2026-12-01",
                        "monthly": [
                            {
                                "month": "2026-12-01",
                                "amounts": {"JKK": 10000, "JKM": 6800},
                                "total": 16800,
                            },
                            {
                                "month": "2027-01-01",
                                "amounts": {"JKK": 10000, "JKM": 6800},
                                "total": 16800,
                            },
                        ],
                        "per_programme": {"JKK": 20000, "JKM": 13600},
                        "total": 33600,
                    },
                ),
            ),
            400: doc.error(
                "A parameter is refused: `income_required`, `income_invalid`, "
                "`income_not_level` (with `nearest`), `programmes_invalid`, "
                "`months_out_of_range`, `occupation_unknown`, `payer_type_invalid`.",
                doc.error_example(
                    "income_not_level",
                    "Rp 1.050.000 is not an income level of the schedule; nearest: "
                    "Rp 1.000.000, Rp 1.100.000.",
                    nearest=[1000000, 1100000],
                ),
            ),
        },
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
        operation_id="dues_retrieve",
        tags=[doc.PAYMENTS],
        summary="Look up what a participant owes",
        description="A cashier's look-up by KPJ number or NIK: a masked name and the amount "
        "to collect, no other personal data. Counts against a channel's daily look-ups.",
        parameters=[
            OpenApiParameter("kpj", str, description="the participant's 11-digit KPJ number"),
            OpenApiParameter("nik", str, description="or the 16-digit NIK"),
            OpenApiParameter(
                "months",
                {"type": "integer", "minimum": 1, "maximum": MAX_MONTHS},
                description="months to pay (default: the months due now, at least 1)",
            ),
        ],
        responses={
            200: doc.ok(
                DueSerializer,
                "What is due.",
                doc.response_example(
                    "two months due",
                    {
                        "kpj_number": doc.KPJ,
                        "name": "B*** S***",
                        "months_due_now": 2,
                        "months": 2,
                        "first_month": "2026-11-01",
                        "amount": 33600,
                    },
                ),
            ),
            404: PARTICIPANT_UNKNOWN,
        },
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
        operation_id="payments_create",
        tags=[doc.PAYMENTS],
        summary="Post a payment",
        description="A participant's payment for `months` months, identified by KPJ number or "
        "NIK; the amount must be the quote for those months. Safe to retry: the same "
        "reference and body again is 200 with the payment posted first.",
        request=PaymentInput,
        examples=[
            doc.request_example(
                "bank payment",
                {
                    "kpj_number": doc.KPJ,
                    "amount": 16800,
                    "months": 1,
                    "reference": "BRI-20261203-000123",
                    "paid_at": doc.WHEN,
                    "payer": "participant",
                },
            )
        ],
        responses={
            201: doc.ok(PaymentSerializer, "Posted.", doc.response_example("posted", PAYMENT)),
            200: doc.ok(PaymentSerializer, "The same payment again: the payment posted first."),
            202: doc.ok(
                PaymentHeldSerializer,
                "An agent's field cash the participant's state refused, held in suspense "
                '(on_conflict "suspense").',
                doc.response_example(
                    "held",
                    {
                        "result": "suspense",
                        "code": "amount_mismatch",
                        "message": "Iuran 1 bulan mulai 12/2026 adalah Rp 16.800, bukan Rp 33.600.",
                        "suspense": {
                            "id": 311,
                            "amount": 33600,
                            "reference": "FAB3K-000017",
                            "paid_at": "2026-12-03T02:41:00Z",
                            "reason": "field_conflict",
                        },
                        "expected": 16800,
                    },
                ),
            ),
            400: doc.error(
                "Refused, nothing written: `validation_error`, `amount_mismatch` (with "
                "`expected`), `paid_at_future`, `paid_at_too_old`, `payer_type_not_allowed`, ...",
                doc.error_example(
                    "amount_mismatch",
                    "Iuran 1 bulan mulai 12/2026 adalah Rp 16.800, bukan Rp 33.600.",
                    expected=16800,
                ),
            ),
            404: PARTICIPANT_UNKNOWN,
            409: REFERENCE_CONFLICT,
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
        operation_id="payments_batches_create",
        tags=[doc.PAYMENTS],
        summary="Post a sponsor's payment batch",
        description="A sponsor pays for many participants at once (a partner for its own "
        "participants, an administrator naming the `sponsor`); every row is priced at the "
        "batch's payer type. All rows are posted or none (400 with the refused rows in "
        "`errors`, as `rows.<index>`).",
        request=BatchInput,
        examples=[
            doc.request_example(
                "two participants",
                {
                    "reference": "GNL-2026-12",
                    "paid_at": doc.WHEN,
                    "total_amount": 50400,
                    "rows": [
                        {"kpj_number": doc.KPJ, "months": 1},
                        {"nik": "3273051705900002", "months": 2},
                    ],
                },
            )
        ],
        responses={
            201: doc.ok(
                BatchSerializer,
                "Posted.",
                doc.response_example(
                    "posted",
                    {
                        "id": 77,
                        "sponsor": "GNL",
                        "payer_type": "sponsor",
                        "reference": "GNL-2026-12",
                        "row_count": 2,
                        "participant_months": 3,
                        "total_amount": 50400,
                        "paid_at": "2026-12-03T02:41:00Z",
                        "created_at": "2026-12-03T02:41:07Z",
                    },
                ),
            ),
            200: doc.ok(BatchSerializer, "The same batch again: the batch posted first."),
            400: doc.error(
                "Refused, nothing written: `validation_error`, `sponsor_unknown`, "
                "`amount_mismatch`, `empty_batch`, `payer_type_not_allowed`, ...",
                doc.error_example(
                    "sponsor_unknown",
                    "Send the sponsor's partner code.",
                    errors=[
                        {
                            "field": "sponsor",
                            "code": "sponsor_unknown",
                            "message": "Unknown partner.",
                        }
                    ],
                ),
            ),
            409: REFERENCE_CONFLICT,
        },
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
        operation_id="participants_ledger_list",
        tags=[doc.PAYMENTS],
        summary="List a participant's ledger",
        description="The participant's ledger entries (payments, reversals, receivables, "
        "adjustments), newest first, cursor-paginated.",
        parameters=PAGE_PARAMS,
        responses={
            200: doc.ok(
                PaginatedLedger,
                "A page of ledger entries.",
                doc.response_example(
                    "page",
                    {
                        "next": None,
                        "previous": None,
                        "results": [
                            {
                                "id": 5120,
                                "kind": "payment",
                                "amount": 16800,
                                "months": 1,
                                "period_start": "2026-12-01",
                                "payment": 9911,
                                "reverses": None,
                                "reason": "",
                                "created_at": "2026-12-03T02:41:05Z",
                            }
                        ],
                    },
                ),
            ),
            404: doc.PARTICIPANT_NOT_FOUND,
        },
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
    @extend_schema(
        operation_id="sync_payments_list",
        tags=[doc.SYNC],
        summary="Payments posted since a token",
        description="Every payment the client may see posted or changed since `since`, in "
        "pages; none skipped or repeated. Keep `next_token` and ask again while `has_more`.",
        parameters=SYNC_PARAMS,
        responses={
            200: doc.ok(
                SyncPaymentsOutput,
                "A page of changes.",
                doc.response_example(
                    "page",
                    {
                        "results": [PAYMENT],
                        "next_token": "WzEyMzUsOTkxMV0:1tQk2x:aB3v0",
                        "has_more": False,
                    },
                ),
            ),
            400: SYNC_BAD_TOKEN,
        },
    )
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
