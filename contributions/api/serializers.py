"""Serializers of the contributions API (shapes and types only; rules live in the services)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from enrollment.api.serializers import (
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    paginated,
)

from ..models import (
    RECEIVING_CHANNELS,
    Bill,
    BillNotification,
    LedgerEntry,
    Payment,
    SponsorBatch,
    SuspenseItem,
)


class PaymentInput(StrictSerializer):
    kpj_number = StrictCharField(max_length=32, required=False)
    nik = StrictCharField(max_length=64, required=False)
    amount = StrictIntegerField(min_value=1, max_value=10**12)
    months = StrictIntegerField()
    channel = serializers.ChoiceField(choices=RECEIVING_CHANNELS, required=False)
    reference = StrictCharField(max_length=128)
    paid_at = serializers.DateTimeField()
    payer = serializers.ChoiceField(choices=Payment.Payer.values, required=False)
    # whose money (enrollment.PayerType); default the sponsor's for a sponsor client, else self.
    # Checked by the service: an unknown value is payer_type_invalid.
    payer_type = StrictCharField(max_length=16, required=False)
    # What a refusal by the participant's state does to an agent's field cash (the offline field
    # app's receipts): refuse it (400, the default) or hold the cash in suspense for the back
    # office (202; agent clients only, contributions/suspense.py record_field_cash).
    on_conflict = serializers.ChoiceField(
        choices=["refuse", "suspense"], required=False, default="refuse"
    )


class PaymentSerializer(serializers.ModelSerializer[Payment]):
    kpj_number = serializers.CharField(source="participant.kpj_number")
    participant = serializers.IntegerField(source="participant_id")

    class Meta:
        model = Payment
        fields = [
            "id",
            "participant",
            "kpj_number",
            "amount",
            "months",
            "period_start",
            "channel",
            "reference",
            "paid_at",
            "payer",
            "payer_type",
            "reactivation",
            "created_at",
        ]


class HeldCashSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(help_text="the suspense item's id")
    amount = serializers.IntegerField()
    reference = serializers.CharField()
    paid_at = serializers.DateTimeField()
    reason = serializers.ChoiceField(choices=SuspenseItem.Reason.choices)


class PaymentHeldSerializer(serializers.Serializer[Any]):
    """The 202 answer of a payment sent with on_conflict "suspense" that the participant's
    state refused: the cash is held in suspense for the back office (again 202 for a repeat)."""

    result = serializers.ChoiceField(choices=["suspense"])
    code = serializers.CharField(help_text="the refusal, e.g. amount_mismatch")
    message = serializers.CharField(help_text="the refusal's message, as first answered")
    suspense = HeldCashSerializer()
    expected = serializers.IntegerField(
        required=False, help_text="amount_mismatch: the quote the amount did not match"
    )


class BatchRowInput(StrictSerializer):
    kpj_number = StrictCharField(max_length=32, required=False)
    nik = StrictCharField(max_length=64, required=False)
    months = StrictIntegerField()


class BatchInput(StrictSerializer):
    reference = StrictCharField(max_length=64)
    paid_at = serializers.DateTimeField()
    total_amount = StrictIntegerField(min_value=1, required=False)
    sponsor = StrictCharField(max_length=32, required=False)
    payer_type = StrictCharField(max_length=16, required=False)  # default: the sponsor's
    rows = BatchRowInput(many=True, allow_empty=False, max_length=10_000)  # type: ignore[call-arg]


class BatchSerializer(serializers.ModelSerializer[SponsorBatch]):
    sponsor = serializers.CharField(source="sponsor.code")

    class Meta:
        model = SponsorBatch
        fields = [
            "id",
            "sponsor",
            "payer_type",
            "reference",
            "row_count",
            "participant_months",
            "total_amount",
            "paid_at",
            "created_at",
        ]


class LedgerEntrySerializer(serializers.ModelSerializer[LedgerEntry]):
    payment = serializers.IntegerField(source="payment_id", allow_null=True)
    reverses = serializers.IntegerField(source="reverses_id", allow_null=True)

    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "kind",
            "amount",
            "months",
            "period_start",
            "payment",
            "reverses",
            "reason",
            "created_at",
        ]


class QuoteMonthSerializer(serializers.Serializer[Any]):
    month = serializers.DateField()
    amounts = serializers.DictField(child=serializers.IntegerField())
    total = serializers.IntegerField()


class QuoteSerializer(serializers.Serializer[Any]):
    declared_income = serializers.IntegerField()
    payer_type = serializers.CharField()
    programmes = serializers.ListField(child=serializers.CharField())
    months = serializers.IntegerField()
    first_month = serializers.DateField()
    monthly = QuoteMonthSerializer(many=True)
    per_programme = serializers.DictField(child=serializers.IntegerField())
    total = serializers.IntegerField()


class DueSerializer(serializers.Serializer[Any]):
    """A cashier's view of one participant: no personal data but a masked name."""

    kpj_number = serializers.CharField()
    name = serializers.CharField(help_text="first letter of each word: B*** S***")
    months_due_now = serializers.IntegerField(help_text="arrears plus this month (0: paid up)")
    months = serializers.IntegerField(help_text="months quoted (the `months` asked, or due now)")
    first_month = serializers.DateField()
    amount = serializers.IntegerField(help_text="Rupiah to collect for `months`")


class SyncPaymentsOutput(serializers.Serializer[Any]):
    results = PaymentSerializer(many=True)
    next_token = serializers.CharField()
    has_more = serializers.BooleanField()


PaginatedLedger = paginated("PaginatedLedger", LedgerEntrySerializer)


# --- bills (payment codes) and the biller protocol --------------------------------------------
class PaymentCodeInput(StrictSerializer):
    participant = StrictIntegerField(min_value=1)
    months = StrictIntegerField()


class WhereToPaySerializer(serializers.Serializer[Any]):
    channel = serializers.ChoiceField(choices=["bank", "retail", "ewallet"])
    how = serializers.CharField(help_text="the steps, in the request's language")


class PaymentCodeSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    participant = serializers.IntegerField()
    months = serializers.IntegerField()
    first_month = serializers.DateField()
    amount = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=Bill.Status.choices)
    qr = serializers.CharField(help_text="the code as a QR image: a data:image/svg+xml URI")
    where_to_pay = WhereToPaySerializer(many=True)


class BillInquirySerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    amount = serializers.IntegerField()
    months = serializers.IntegerField()
    name = serializers.CharField(help_text="masked: the first letter of each name")
    expires_at = serializers.DateTimeField()
    status = serializers.CharField(help_text='always "open" (else 404 or 410)')


class BillPaymentInput(StrictSerializer):
    reference = StrictCharField(max_length=100)
    amount = StrictIntegerField(min_value=1, max_value=10**12)
    paid_at = serializers.DateTimeField()


class BillPaymentResult(serializers.Serializer[Any]):
    status = serializers.ChoiceField(choices=BillNotification.Outcome.choices)
    code = serializers.CharField()
    reference = serializers.CharField()
    amount = serializers.IntegerField()
    payment = serializers.IntegerField(required=False, help_text="applied: the payment's id")
    paid_through = serializers.DateField(required=False, allow_null=True)
    suspense = serializers.IntegerField(required=False, help_text="suspense: the item's id")
    reason = serializers.ChoiceField(choices=SuspenseItem.Reason.choices, required=False)


class BillReversalInput(StrictSerializer):
    reason = StrictCharField(max_length=200, required=False, allow_blank=True)


class BillReversalResult(serializers.Serializer[Any]):
    status = serializers.CharField(help_text='always "reversed"')
    code = serializers.CharField()
    reference = serializers.CharField()
    amount = serializers.IntegerField()
    reversal = serializers.IntegerField(help_text="the reversal's id")
    payment = serializers.IntegerField(required=False, help_text="the payment reversed")
    paid_through = serializers.DateField(required=False, allow_null=True)
    suspense = serializers.IntegerField(required=False, help_text="the suspense item voided")
    bill_status = serializers.ChoiceField(choices=Bill.Status.choices)
