"""Credit on account for months paid before a discount: PP 50/2025 Pasal 4.

"Dalam hal peserta Bukan Penerima Upah telah melunasi Iuran JKK dan JKM untuk periode yang
diberikan penyesuaian dan terdapat kelebihan, maka kelebihan pembayaran Iuran JKK dan JKM
tersebut diperhitungkan untuk Iuran JKK dan JKM bulan berikutnya" (PP 50/2025 as quoted by the
press, 4 Feb 2026): what a participant paid for months the discount later covered counts toward
the following months. Not a refund.

- `find`: every live payment by the participant's own money (not budget-paid: they pay the full
  rate; not a sponsor's) whose months now cost less than it paid - its amount plus the credit
  it used equals the price *without* discounts (it was priced before the discount was in the
  rate book) and the rate book now discounts some of its months. A payment whose price matches
  neither (the income level changed since) is listed for a person to look at.
- `apply`: per finding, under the coverage row's lock, a `grant` (ContributionCredit, one per
  payment: a unique index) of the difference, then `cover_from_credit`: while the credit pays
  at least the next month, that month is posted as paid from credit - a Payment on the portal's
  own channel `credit` with its ledger entry, an adjustment of minus the same amount (no new
  money came in, so the balance stays the money received) and a `use` of the credit. What is
  left (less than a month) is taken off the participant's next payment (quotes.quote_payment).
- Idempotent: a second run grants nothing; `manage.py grant_discount_credits` (dry run first).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone

from enrollment.models import Participant, PayerType
from enrollment.services import sector_history

from .ledger import not_reversed
from .models import ContributionCredit, Coverage, LedgerEntry, Payment
from .quotes import payment_price, quote_payment
from .rates import QuoteError


@dataclass(frozen=True)
class Excess:
    payment: Payment
    paid: int  # amount + credit it used
    now: int | None  # what its months cost today; None: could not be priced
    problem: str = ""

    @property
    def credit(self) -> int:
        return 0 if self.now is None or self.problem else self.paid - self.now


def find() -> list[Excess]:
    live = LedgerEntry.objects.filter(
        participant_id=OuterRef("participant_id"),
        payment=OuterRef("pk"),
        kind=LedgerEntry.Kind.PAYMENT,
    ).filter(not_reversed())
    # each subquery names the participant: on a cluster it then runs on the payment's shard
    granted = ContributionCredit.objects.filter(
        participant_id=OuterRef("participant_id"),
        payment=OuterRef("pk"),
        kind=ContributionCredit.Kind.GRANT,
    )
    used = (
        ContributionCredit.objects.filter(
            participant_id=OuterRef("participant_id"),
            payment=OuterRef("pk"),
            kind=ContributionCredit.Kind.USE,
        )
        .values("payment")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    payments = list(
        Payment.objects.filter(Exists(live))
        .exclude(Exists(granted))
        .exclude(channel=Payment.Channel.CREDIT)
        .filter(payer_type=PayerType.SELF, sponsor__isnull=True)
        .annotate(used=used)
        .select_related("participant__occupation")
        .order_by("id")
    )
    histories = sector_history(sorted({p.participant_id for p in payments}))
    out = []
    for payment in payments:
        p = payment.participant
        paid = payment.amount - int(getattr(payment, "used", None) or 0)
        history = histories.get(p.pk, ())
        try:
            now = payment_price(p, payment, payer_type=payment.payer_type, history=history)
            undiscounted = payment_price(
                p, payment, payer_type=payment.payer_type, history=history, apply_discounts=False
            )
        except QuoteError as exc:
            out.append(Excess(payment, paid, None, f"quote: {exc.code}"))
            continue
        if now >= paid:
            continue  # priced with the discount (or more): nothing to credit
        problem = "" if paid == undiscounted else "amount is not the undiscounted price"
        out.append(Excess(payment, paid, now, problem))
    return out


def apply(findings: list[Excess], *, user: User | None = None) -> tuple[int, int]:
    """Grant each correctable finding's credit and cover what it pays; (grants, months)."""
    grants = months = 0
    for f in findings:
        if f.credit <= 0:
            continue
        try:
            with transaction.atomic():
                cov = Coverage.objects.select_for_update().get(pk=f.payment.participant_id)
                if LedgerEntry.objects.filter(
                    payment=f.payment, kind=LedgerEntry.Kind.REVERSAL
                ).exists():
                    continue  # reversed since it was found: nothing was overpaid
                ContributionCredit.objects.create(
                    participant_id=cov.pk,
                    kind=ContributionCredit.Kind.GRANT,
                    amount=f.credit,
                    payment=f.payment,
                    reason=(
                        f"PP 50/2025: Rp {f.paid:,} paid for months now costing Rp {f.now:,} "
                        f"(payment {f.payment.channel}:{f.payment.reference})"
                    )[:255],
                )
                cov.credit += f.credit
                cov.save(update_fields=["credit", "updated_at"])
                months += _cover(cov, user=user)
        except IntegrityError:  # granted meanwhile by another run
            continue
        grants += 1
    return grants, months


def cover_all() -> int:
    """cover_from_credit for every participant with credit on account (a few: the daily
    refresh runs it); returns the months paid."""
    ids = Coverage.objects.filter(credit__gt=0).values_list("pk", flat=True)
    return sum(cover_from_credit(pid) for pid in list(ids))


def cover_from_credit(participant_id: int, *, user: User | None = None) -> int:
    """Post the months the participant's credit pays in full; returns how many."""
    with transaction.atomic():
        cov = Coverage.objects.select_for_update().get(pk=participant_id)
        return _cover(cov, user=user)


def _cover(cov: Coverage, *, user: User | None) -> int:
    from .services import post_from_credit

    participant = Participant.objects.select_related("occupation").get(pk=cov.pk)
    today = timezone.localdate()
    covered = 0
    while cov.credit > 0:
        due = quote_payment(participant, cov, months=1, as_of=today, use_credit=False)
        if due.amount > cov.credit:
            break
        post_from_credit(cov, participant, due, user=user)
        covered += 1
    return covered
