"""The quote a payment must equal: the months it covers (from the first unpaid month, or the
current month after a lapse) priced by the rate schedule (contributions/rates.py). A pure
computation that the write paths (services), the read paths (selectors: the amount due now) and
the reminders share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.utils import timezone

from enrollment.models import Participant
from enrollment.services import sector_history

from . import coverage as rules
from .errors import PaymentError
from .models import Coverage, Payment
from .rates import QuoteError, quote_contribution


@dataclass(frozen=True)
class DueNow:
    """What a payment made on `as_of` must cover and cost: `amount` to pay, after `credit`
    (the participant's credit on account it uses: contributions/credits.py)."""

    first_month: date
    months: int
    amount: int
    reactivation: bool
    credit: int = 0

    @property
    def price(self) -> int:
        """What the months cost: the amount paid plus the credit used."""
        return self.amount + self.credit


def payment_price(
    participant: Participant,
    payment: Payment,
    *,
    payer_type: str,
    history: tuple[tuple[date, str], ...],
    apply_discounts: bool = True,
) -> int:
    """What a posted payment's months cost by today's rate book, paid by `payer_type` (the
    corrections of budget payments and the PP 50/2025 credits reprice with it). Raises
    QuoteError."""
    return quote_contribution(
        declared_income=participant.declared_income,
        programmes=participant.programmes,
        months=payment.months,
        first_month=payment.period_start,
        sector=participant.occupation.sector,
        payer_type=payer_type,
        sector_history=history,
        apply_discounts=apply_discounts,
    ).total


def quote_payment(
    participant: Participant,
    cov: Coverage | None,
    *,
    months: int,
    as_of: date,
    payer_type: str = "self",
    history: tuple[tuple[date, str], ...] | None = None,
    use_credit: bool = True,
) -> DueNow:
    """The quote a payment of `months` months made on `as_of` by `payer_type` (whose money,
    enrollment.PayerType) must equal: from the first unpaid month, or the current month after
    a lapse. Months before an occupation change are priced by the sector of the occupation
    held then (`history`: enrollment.services.sector_history; read here when None and the
    months start before this month - later months always have the current occupation).
    The participant's own payments use their credit on account first (Coverage.credit,
    PP 50/2025: `use_credit`); a sponsor's or a budget's do not. Raises PaymentError with the
    QuoteError code."""
    paid_through = cov.paid_through if cov else None
    start_month = cov.start_month if cov else rules.month_start(as_of)
    first = rules.first_month_to_pay(
        paid_through=paid_through, start_month=start_month, as_of=as_of
    )
    reactivation = (
        rules.status_for(paid_through=paid_through, start_month=start_month, as_of=as_of)
        == rules.LAPSED
    )
    if history is None:
        history = (
            sector_history([participant.pk]).get(participant.pk, ())
            if first < rules.month_start(timezone.localdate())
            else ()
        )
    try:
        quote = quote_contribution(
            declared_income=participant.declared_income,
            programmes=participant.programmes,
            months=months,
            first_month=first,
            sector=participant.occupation.sector,
            payer_type=payer_type,
            sector_history=history,
        )
    except QuoteError as exc:
        raise PaymentError(exc.code, exc.message) from exc
    on_account = cov.credit if cov is not None and use_credit and payer_type == "self" else 0
    # Credit pays part of a payment; a credit that would pay all of it is not used here (no
    # payment of Rp 0 anywhere): whole months are paid from it by credits.cover_from_credit
    # (the grant, and the daily status refresh).
    credit = on_account if 0 < on_account < quote.total else 0
    return DueNow(
        first_month=first,
        months=months,
        amount=quote.total - credit,
        reactivation=reactivation,
        credit=credit,
    )
