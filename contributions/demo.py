"""Demo payments for `make run` (on enrollment's `demo_seeding` signal): a mix of active, grace
and lapsed participants, all posted through the real payment service. Safe to run twice."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.db import transaction
from django.utils import timezone

from enrollment.models import Participant, Partner, PayerType

from . import coverage as rules
from .errors import PaymentError
from .models import Coverage, Payment
from .quotes import quote_payment
from .rates import add_months
from .services import record_payment, refresh_coverage_statuses


def _at(day: Any) -> datetime:
    """10:00 local on `day`, but never in the future (demo data seeded between 00:00 and 10:00
    local time would otherwise post "future" payments, which the service refuses)."""
    return min(timezone.make_aware(datetime.combine(day, time(10, 0))), timezone.now())


def _joined(participant: Participant, cov: Coverage, month: Any) -> None:
    """Back-date a demo registration to the first of `month` (payments may not predate it)."""
    cov.start_month = month
    cov.save(update_fields=["start_month"])
    participant.created_at = min(_at(month), participant.created_at)
    Participant.objects.filter(pk=participant.pk).update(created_at=participant.created_at)


@transaction.atomic
def seed_demo_payments() -> dict[str, int]:
    today = timezone.localdate()
    this_month = rules.month_start(today)
    posted = 0
    partners = {p.code: p for p in Partner.objects.filter(code__in=["SERTAKAN", "PEMKAB-PPU"])}
    sponsors = {k: partners[c] for k, c in ((1, "SERTAKAN"), (4, "PEMKAB-PPU")) if c in partners}
    actives = 0
    demo = Participant.objects.filter(registered_by__isnull=False, payments__isnull=True)
    for participant in demo.select_related("occupation").order_by("id"):
        cov = Coverage.objects.filter(pk=participant.pk).first()
        if cov is None:
            continue
        kind = participant.pk % 4
        # Demo workers are all registered today; pretend some joined earlier so that the
        # demo shows every status. Coverage is a denormalised row, not the ledger.
        if kind == 0:  # joined 6 months ago, never paid -> lapsed
            _joined(participant, cov, add_months(this_month, -6))
            continue
        if kind == 1:  # joined 2 months ago, paid 1 month -> grace
            _joined(participant, cov, add_months(this_month, -2))
            months, paid_on = 1, add_months(this_month, -2)
        else:  # pays this month and some ahead -> active
            months, paid_on = 1 + participant.pk % 3, today
            paid_on = min(paid_on, today)
        # a few active workers are paid for: by a company (Sertakan) or a regency's APBD
        sponsor = None
        if kind >= 2:
            actives += 1
            sponsor = sponsors.get(actives % 6)
        payer_type = sponsor.payer_type if sponsor else PayerType.SELF
        try:
            due = quote_payment(
                participant, cov, months=months, as_of=paid_on, payer_type=payer_type
            )
            _, created = record_payment(
                participant=participant,
                amount=due.amount,
                months=months,
                payer=Payment.Payer.SPONSOR if sponsor else Payment.Payer.PARTICIPANT,
                payer_type=payer_type,
                sponsor=sponsor,
                channel=Payment.Channel.BANK,
                reference=f"DEMO-{participant.kpj_number}-1",
                paid_at=_at(paid_on),
                notify=False,  # past payments of demo data: no receipts
                backdated=True,  # history, older than PAYMENT_MAX_AGE_DAYS
            )
        except PaymentError:
            continue
        posted += created
    refresh_coverage_statuses(as_of=today)
    return {"demo_payments_posted": posted}


def on_demo_seeding(**_kwargs: Any) -> dict[str, int]:
    return seed_demo_payments()
