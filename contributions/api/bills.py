"""The bills API: payment codes for the apps that serve a worker (admin, agent, partner), and
the biller protocol for payment channels - inquiry of a code, then a signed payment
notification (docs/api.md "Bills"; the rules are in contributions/bills.py)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from bpjsportal.core import qr
from bpjsportal.core.api.errors import ApiError
from enrollment.api import schema as doc
from enrollment.api.base import ApiView
from enrollment.api.lookups import count_lookup
from enrollment.api.scopes import participants_for
from enrollment.api.signing import HEADER, verify
from enrollment.models import ApiClient
from enrollment.pii import mask_name

from ..bills import (
    BillError,
    Notified,
    find_bill,
    notify_payment,
    open_bill,
    state_of,
    void_notification,
    where_to_pay,
)
from ..errors import PaymentConflict, PaymentError, ReversalError
from ..models import Bill, BillNotification, BillReversal, Coverage
from ..rates import add_months
from ..suspense import SuspenseError
from .serializers import (
    BillInquirySerializer,
    BillPaymentInput,
    BillPaymentResult,
    BillReversalInput,
    BillReversalResult,
    PaymentCodeInput,
    PaymentCodeSerializer,
)
from .views import REFERENCE_CONFLICT, payment_error

SIGNED = [
    OpenApiParameter(
        HEADER,
        str,
        OpenApiParameter.HEADER,
        required=True,
        description='"t=<unix seconds>,v1=<hex HMAC-SHA256(signing secret, "<t>.<raw body>")>"',
    )
]
CODE = "8302949915730626"
NOT_A_CHANNEL = doc.error(
    "The client is not a payment channel (`permission_denied`), or the client's scope may "
    "not do this.",
    doc.error_example(
        "permission_denied", "Only a payment channel's API client may use the biller protocol."
    ),
)
BILL_UNKNOWN = doc.error(
    "No bill has this code (`bill_unknown`).",
    doc.error_example("bill_unknown", "No bill has this code."),
)
SIGNATURE_INVALID = doc.error(
    "No API token or a bad one (`not_authenticated`, `invalid_token`), or the X-Signature "
    "header is missing, wrong or too old (`signature_invalid`); nothing was written.",
    doc.error_example("signature_invalid", "The X-Signature header is missing, wrong or too old."),
)


def _denied(what: str | Promise) -> ApiError:
    return ApiError("permission_denied", what, status_code=status.HTTP_403_FORBIDDEN)


def channel_only(client: ApiClient) -> ApiClient:
    if client.scope != ApiClient.Scope.CHANNEL:
        raise _denied(_("Only a payment channel's API client may use the biller protocol."))
    return client


def code_body(bill: Bill) -> dict[str, Any]:
    return {
        "code": bill.code,
        "participant": bill.participant_id,
        "months": bill.months,
        "first_month": bill.period_start,
        "amount": bill.amount,
        "expires_at": bill.expires_at,
        "status": state_of(bill),
        "qr": qr.data_uri(bill.code),
        "where_to_pay": where_to_pay(),
    }


class PaymentCodeCreateApi(ApiView):
    """A payment code for 1-12 months of a participant's contributions (the same code again
    while it is open)."""

    @extend_schema(
        operation_id="payment_codes_create",
        tags=[doc.BILLS],
        summary="Issue a payment code",
        description="A bill code for 1-12 months of a participant's contributions, to pay at a "
        "bank, a shop or an e-wallet; while that bill is open, the same request answers the "
        "same code (200). A payment channel pays bills, it does not issue them (403).",
        request=PaymentCodeInput,
        examples=[doc.request_example("three months", {"participant": 42, "months": 3})],
        responses={
            201: doc.ok(
                PaymentCodeSerializer,
                "A new code.",
                doc.response_example(
                    "issued",
                    {
                        "code": CODE,
                        "participant": 42,
                        "months": 3,
                        "first_month": "2026-12-01",
                        "amount": 50400,
                        "expires_at": "2026-12-06T09:12:03Z",
                        "status": "open",
                        "qr": "data:image/svg+xml;base64,PD94bWwg",
                        "where_to_pay": [
                            {"channel": "bank", "how": "Bank: ATM, mobile or internet banking"},
                            {"channel": "retail", "how": "Shop (minimarket, post office)"},
                            {"channel": "ewallet", "how": "E-wallet app: Bills"},
                        ],
                    },
                ),
            ),
            200: doc.ok(PaymentCodeSerializer, "The participant's open code for these months."),
            404: doc.error(
                "No participant with this id within the client's scope (`participant_unknown`).",
                doc.error_example(
                    "participant_unknown",
                    "No participant with this id is visible to this client.",
                ),
            ),
        },
    )
    def post(self, request: Request) -> Response:
        client = self.client(request)
        if client.scope == ApiClient.Scope.CHANNEL:
            raise _denied(_("A payment channel pays bills; it does not issue them."))
        serializer = PaymentCodeInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        participant = (
            participants_for(client, "look_up_dues")
            .filter(Q(pk=data["participant"]))
            .select_related("occupation")
            .first()
        )
        if participant is None:
            raise ApiError(
                "participant_unknown",
                _("No participant with this id is visible to this client."),
                status_code=status.HTTP_404_NOT_FOUND,
            )
        try:
            bill, created = open_bill(participant=participant, months=data["months"])
        except BillError as exc:
            raise ApiError(exc.code, exc.message) from exc
        except PaymentError as exc:
            raise payment_error(exc) from exc
        return Response(
            PaymentCodeSerializer(code_body(bill)).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


def _gone(bill: Bill) -> ApiError | None:
    state = state_of(bill)
    if state == Bill.Status.PAID:
        return ApiError("bill_paid", _("This bill is already paid."), status_code=410)
    if state == Bill.Status.EXPIRED:
        return ApiError("bill_expired", _("This bill has expired."), status_code=410)
    return None


def _unknown() -> ApiError:
    return ApiError(
        "bill_unknown", _("No bill has this code."), status_code=status.HTTP_404_NOT_FOUND
    )


class BillInquiryApi(ApiView):
    """What a cashier shows before taking the money: the amount and a masked name."""

    @extend_schema(
        operation_id="bills_retrieve",
        tags=[doc.BILLS],
        summary="Inquire a bill (channel)",
        description="A payment channel's inquiry of a code before it takes the money: the "
        "amount and a masked name. Counts against the channel's daily look-ups.",
        responses={
            200: doc.ok(
                BillInquirySerializer,
                "The bill is open.",
                doc.response_example(
                    "open",
                    {
                        "code": CODE,
                        "amount": 50400,
                        "months": 3,
                        "name": "B*** S***",
                        "expires_at": "2026-12-06T09:12:03Z",
                        "status": "open",
                    },
                ),
            ),
            403: NOT_A_CHANNEL,
            404: BILL_UNKNOWN,
            410: doc.error(
                "The bill is paid (`bill_paid`) or expired (`bill_expired`).",
                doc.error_example("bill_paid", "This bill is already paid."),
            ),
        },
    )
    def get(self, request: Request, code: str) -> Response:
        client = channel_only(self.client(request))
        count_lookup(client)  # like a dues look-up: within the channel's daily limit
        bill = find_bill(code)
        if bill is None:
            raise _unknown()
        gone = _gone(bill)
        if gone is not None:
            raise gone
        return Response(
            BillInquirySerializer(
                {
                    "code": bill.code,
                    "amount": bill.amount,
                    "months": bill.months,
                    "name": mask_name(bill.participant.full_name),
                    "expires_at": bill.expires_at,
                    "status": "open",
                }
            ).data
        )


def signed_body(request: Request, client: ApiClient) -> bytes:
    """The raw body, if the X-Signature header signs it with the client's secret (401 else)."""
    raw = request.body  # the signed bytes, read before the JSON parser
    if not verify(client, raw, request.headers.get(HEADER, "")):
        raise ApiError(
            "signature_invalid",
            _("The X-Signature header is missing, wrong or too old."),
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    return raw


def notified_body(done: Notified) -> dict[str, Any]:
    n: BillNotification = done.notification
    body: dict[str, Any] = {"status": n.outcome, "code": n.bill.code, "reference": n.reference}
    if done.applied:
        assert n.payment is not None
        # paid through the payment's last month: what the first answer said, word for word in a
        # replay (read off the payment; no second look at the coverage row)
        body.update(
            amount=n.payment.amount,
            payment=n.payment_id,
            paid_through=add_months(n.payment.period_start, n.payment.months - 1),
        )
    else:
        assert n.suspense is not None
        body.update(amount=n.suspense.amount, suspense=n.suspense_id, reason=n.suspense.reason)
    return body


class BillPaymentApi(ApiView):
    """A channel's payment notification for a bill, signed (X-Signature). 201 applied (200 when
    the same notification comes again), 202 suspense (money held, never dropped; again 202)."""

    @extend_schema(
        operation_id="bills_payments_create",
        tags=[doc.BILLS],
        summary="Notify a bill's payment (channel, signed)",
        description="A payment channel's notification that a bill was paid, signed with "
        "X-Signature. The money is applied to the bill (201), or held in suspense when it "
        "cannot be (202: wrong amount, bill expired or paid); never dropped. The same "
        "notification again answers as the first time.",
        request=BillPaymentInput,
        parameters=SIGNED,
        examples=[
            doc.request_example(
                "paid at a bank",
                {
                    "reference": "BRI-20261203-000777",
                    "amount": 50400,
                    "paid_at": "2026-12-03T10:02:00+07:00",
                },
            )
        ],
        responses={
            201: doc.ok(
                BillPaymentResult,
                "Applied: the payment is recorded.",
                doc.response_example(
                    "applied",
                    {
                        "status": "applied",
                        "code": CODE,
                        "reference": "BRI-20261203-000777",
                        "amount": 50400,
                        "payment": 9911,
                        "paid_through": "2027-02-01",
                    },
                ),
            ),
            202: doc.ok(
                BillPaymentResult,
                "Held in suspense (again 202 for the same notification).",
                doc.response_example(
                    "suspense",
                    {
                        "status": "suspense",
                        "code": CODE,
                        "reference": "BRI-20261203-000778",
                        "amount": 40000,
                        "suspense": 311,
                        "reason": "amount_mismatch",
                    },
                ),
            ),
            200: doc.ok(BillPaymentResult, "The same notification again: the first answer."),
            401: SIGNATURE_INVALID,
            403: NOT_A_CHANNEL,
            404: BILL_UNKNOWN,
            409: REFERENCE_CONFLICT,
        },
    )
    def post(self, request: Request, code: str) -> Response:
        client = channel_only(self.client(request))
        raw = signed_body(request, client)
        serializer = BillPaymentInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            done = notify_payment(
                client=client,
                code=code,
                reference=data["reference"],
                amount=data["amount"],
                paid_at=data["paid_at"],
                body_sha256=hashlib.sha256(raw).hexdigest(),
            )
        except BillError as exc:
            if exc.code == "bill_unknown":
                raise _unknown() from exc
            raise ApiError(exc.code, exc.message, status_code=status.HTTP_409_CONFLICT) from exc
        except PaymentConflict as exc:
            raise ApiError(exc.code, exc.message, status_code=status.HTTP_409_CONFLICT) from exc
        except PaymentError as exc:
            raise payment_error(exc) from exc
        code_status: int
        if not done.applied:  # held in suspense, first time or again
            code_status = status.HTTP_202_ACCEPTED
        elif done.replay:
            code_status = status.HTTP_200_OK
        else:
            code_status = status.HTTP_201_CREATED
        return Response(BillPaymentResult(notified_body(done)).data, status=code_status)


def reversal_body(reversal: BillReversal) -> dict[str, Any]:
    n: BillNotification = reversal.notification
    bill = Bill.objects.get(pk=n.bill_id)
    body: dict[str, Any] = {
        "status": "reversed",
        "code": bill.code,
        "reference": n.reference,
        "reversal": reversal.pk,
        "bill_status": state_of(bill),
    }
    if n.payment_id is not None:
        cov = Coverage.objects.filter(pk=n.participant_id).first()
        body.update(
            amount=n.payment.amount if n.payment else 0,
            payment=n.payment_id,
            paid_through=cov.paid_through if cov else None,
        )
    else:
        assert n.suspense is not None
        body.update(amount=n.suspense.amount, suspense=n.suspense_id)
    return body


class BillReversalApi(ApiView):
    """A channel's same-day void of its own notification, signed (X-Signature): the payment is
    reversed through the ledger (the bill opens again), or the suspense item is voided. 201, or
    200 when the same void comes again; after the notification's day, 409 reversal_too_late."""

    @extend_schema(
        operation_id="bills_payments_reversal_create",
        tags=[doc.BILLS],
        summary="Void a bill's payment the same day (channel, signed)",
        description="A payment channel voids its own notification on the day it sent it, "
        "signed with X-Signature: the payment is reversed through the ledger (the bill opens "
        "again) or the suspense item voided. After that day: 409 `reversal_too_late`.",
        request=BillReversalInput,
        parameters=SIGNED,
        examples=[doc.request_example("cashier error", {"reason": "cashier keyed the wrong code"})],
        responses={
            201: doc.ok(
                BillReversalResult,
                "Reversed.",
                doc.response_example(
                    "reversed",
                    {
                        "status": "reversed",
                        "code": CODE,
                        "reference": "BRI-20261203-000777",
                        "amount": 50400,
                        "reversal": 18,
                        "payment": 9911,
                        "paid_through": "2026-11-01",
                        "bill_status": "open",
                    },
                ),
            ),
            200: doc.ok(BillReversalResult, "The same void again: the first answer."),
            401: SIGNATURE_INVALID,
            403: NOT_A_CHANNEL,
            404: doc.error(
                "No notification with this reference for this code from this channel "
                "(`notification_unknown`).",
                doc.error_example(
                    "notification_unknown", "This channel sent no notification with this reference."
                ),
            ),
            409: doc.error(
                "The void is refused: `reversal_too_late` (after the notification's day), "
                "or the payment or suspense item cannot be voided any more.",
                doc.error_example(
                    "reversal_too_late",
                    "A payment can be voided only on the day it was notified; ask the back office.",
                ),
            ),
        },
    )
    def post(self, request: Request, code: str, reference: str) -> Response:
        client = channel_only(self.client(request))
        signed_body(request, client)
        serializer = BillReversalInput(data=request.data if request.body else {})
        serializer.is_valid(raise_exception=True)
        try:
            reversal, created = void_notification(
                client=client,
                code=code,
                reference=reference,
                reason=serializer.validated_data.get("reason", ""),
            )
        except BillError as exc:
            if exc.code == "notification_unknown":
                raise ApiError(exc.code, exc.message, status_code=404) from exc
            raise ApiError(exc.code, exc.message, status_code=status.HTTP_409_CONFLICT) from exc
        except (ReversalError, SuspenseError) as exc:
            raise ApiError(exc.code, exc.message, status_code=status.HTTP_409_CONFLICT) from exc
        return Response(
            BillReversalResult(reversal_body(reversal)).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
