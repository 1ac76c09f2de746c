"""Read paths of contributions shared by pages, admin and reports."""

from __future__ import annotations

from datetime import date

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F, Prefetch, QuerySet

from enrollment.models import Participant
from enrollment.selectors import participants_visible_to

from . import coverage as rules
from .errors import PaymentError
from .models import Coverage, LedgerEntry, Payment
from .quotes import quote_payment

RECENT_ENTRIES = 5


def coverage_of(participant: Participant) -> Coverage | None:
    return Coverage.objects.filter(pk=participant.pk).first()


def amount_due_now(
    participant: Participant, cov: Coverage | None, as_of: date
) -> dict[str, object]:
    """Months and Rupiah to pay on `as_of` to be active (arrears + current month), or zeros."""
    if cov is None:
        return {"months": 0, "amount": 0, "first_month": None}
    months = rules.months_due_now(
        paid_through=cov.paid_through, start_month=cov.start_month, as_of=as_of
    )
    if months == 0:
        return {"months": 0, "amount": 0, "first_month": None}
    try:
        due = quote_payment(participant, cov, months=min(months, 12), as_of=as_of)
    except PaymentError:
        return {"months": months, "amount": None, "first_month": None}
    return {"months": due.months, "amount": due.amount, "first_month": due.first_month}


def ledger_of(participant: Participant) -> QuerySet[LedgerEntry]:
    # the payments read by a second query naming the participant (a join on payment_id alone
    # would not stay on the participant's node on a cluster)
    return (
        LedgerEntry.objects.filter(participant=participant)
        .select_related("created_by")
        .prefetch_related(Prefetch("payment", Payment.objects.filter(participant=participant)))
        .order_by("-id")
    )


def payments_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Payment]:
    return Payment.objects.filter(participant__in=participants_visible_to(user))


def with_coverage_status(qs: QuerySet[Participant]) -> QuerySet[Participant]:
    """Annotate coverage status and paid-through month (API output, status filter)."""
    return qs.annotate(
        coverage_status=F("coverage__status"), coverage_paid_through=F("coverage__paid_through")
    )
