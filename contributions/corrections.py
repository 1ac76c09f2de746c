"""Budget-paid payments posted at a discounted price: found and corrected in the ledger.

PP 50/2025 (Pasal 3; CNBC Indonesia 4 Feb 2026) gives its 50 % discount to BPU participants
except those whose contributions are paid from the APBN or an APBD (a village fund is APBN
money: enrollment.PayerType). Before payer types existed, a regency's batch was priced like any
sponsor's, so in discount months it paid half. Payments are never edited (docs/contributions.md
"Ledger"): each such payment gets one *receivable* ledger entry (kind `due`, negative: owed to
BPJS by the budget payer) for the difference, with the reason, linked to the payment. Then the
payment's net price - its amount plus what is receivable for it - is the undiscounted rate.

- A payment is budget-paid when its own payer type is, or its sponsor's (Partner.payer_type,
  which an admin sets when a partner turns out to be a regency or a ministry).
- The receivable is the difference between the full quote and the quote the payment was
  priced at (the same participant's income, programmes, sector, months and first month, paid
  by a non-budget payer). When the payment's amount is not that discounted quote (the
  participant's income changed since, or it was priced another way) it is not guessed at: it
  is reported for a person to look at.
- Idempotent: at most one receivable per payment (a partial unique index); a second run finds
  nothing to do. Each correction is its own transaction with the coverage row locked (the
  coverage balance is the sum of the ledger, `check_ledger`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q

from enrollment.models import PAYER_GROUPS
from enrollment.services import sector_history

from .ledger import not_reversed
from .models import Coverage, LedgerEntry, Payment
from .quotes import payment_price
from .rates import QuoteError

BUDGET = PAYER_GROUPS["budget"]


@dataclass(frozen=True)
class Finding:
    payment: Payment
    payer_type: str  # the budget payer type that applies
    charged: int
    full: int | None  # None: could not be priced
    problem: str = ""  # why it is left for a person

    @property
    def receivable(self) -> int:
        return 0 if self.full is None or self.problem else self.full - self.charged

    @property
    def sponsor(self) -> str:
        return self.payment.sponsor.code if self.payment.sponsor else "-"


def _candidates(sponsor_code: str | None) -> Iterator[Payment]:
    live = LedgerEntry.objects.filter(
        participant_id=OuterRef("participant_id"),
        payment=OuterRef("pk"),
        kind=LedgerEntry.Kind.PAYMENT,
    ).filter(not_reversed())
    corrected = LedgerEntry.objects.filter(
        participant_id=OuterRef("participant_id"), payment=OuterRef("pk"), kind=LedgerEntry.Kind.DUE
    )
    qs = (
        Payment.objects.filter(Q(payer_type__in=BUDGET) | Q(sponsor__payer_type__in=BUDGET))
        .filter(Exists(live))
        .exclude(Exists(corrected))
        .select_related("participant__occupation", "sponsor")
        .order_by("id")
    )
    if sponsor_code:
        qs = qs.filter(sponsor__code=sponsor_code)
    return qs.iterator(chunk_size=2000)


def find(*, sponsor_code: str | None = None) -> list[Finding]:
    """Every live budget-paid payment without a receivable whose amount is below the full
    rate (or that cannot be priced); payments already at the full rate are not listed."""
    out = []
    payments = list(_candidates(sponsor_code))
    histories = sector_history(sorted({p.participant_id for p in payments}))
    for payment in payments:
        payer_type = (
            payment.payer_type
            if payment.payer_type in BUDGET
            else payment.sponsor.payer_type
            if payment.sponsor
            else payment.payer_type
        )
        p = payment.participant
        history = histories.get(p.pk, ())
        try:
            full = payment_price(p, payment, payer_type=payer_type, history=history)
            discounted = payment_price(p, payment, payer_type="sponsor", history=history)
        except QuoteError as exc:
            out.append(Finding(payment, payer_type, payment.amount, None, f"quote: {exc.code}"))
            continue
        if payment.amount == full:
            continue
        problem = "" if payment.amount == discounted else "amount is not the discounted quote"
        out.append(Finding(payment, payer_type, payment.amount, full, problem))
    return out


def _reason(f: Finding) -> str:
    return (
        f"PP 50/2025: no discount for {f.payer_type.upper()}-paid contributions; "
        f"Rp {f.receivable:,} receivable from {f.sponsor} for payment "
        f"{f.payment.channel}:{f.payment.reference} (full rate Rp {f.full:,})"
    )[:255]


def apply(findings: list[Finding], *, user: User | None = None) -> int:
    """Post one receivable per correctable finding; returns how many were posted (a payment
    corrected meanwhile by another run is skipped)."""
    posted = 0
    for f in findings:
        if f.receivable <= 0:
            continue
        try:
            with transaction.atomic():
                cov = Coverage.objects.select_for_update().get(pk=f.payment.participant_id)
                LedgerEntry.objects.create(
                    participant_id=f.payment.participant_id,
                    kind=LedgerEntry.Kind.DUE,
                    amount=-f.receivable,
                    payment=f.payment,
                    reason=_reason(f),
                    created_by=user,
                )
                cov.balance -= f.receivable
                cov.save(update_fields=["balance", "updated_at"])
        except IntegrityError:  # the partial unique index: already corrected
            continue
        posted += 1
    return posted


def by_sponsor(findings: list[Finding]) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(sponsor, payer type) -> (payments to correct, Rupiah receivable, payments to review)."""
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for f in findings:
        row = out[(f.sponsor, f.payer_type)]
        if f.problem:
            row[2] += 1
        else:
            row[0] += 1
            row[1] += f.receivable
    return {k: (v[0], v[1], v[2]) for k, v in sorted(out.items())}
