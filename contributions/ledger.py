"""The ledger as the source of truth: what a participant's entries imply, and the proof that the
denormalised Coverage rows agree with them (`manage.py check_ledger`).

Derivation rules (the services keep Coverage equal to these):
- live payments = payment entries without a reversal;
- paid through = the last month of the latest live payment (live payments never overlap);
- a run of cover is a sequence of live payments each starting the month after the previous one
  ends; a gap is a reactivation after a lapse (no back-cover), so the current run starts the
  `active_since` month and `continuous_months` counts its months;
- balance = the sum of all entries (payments, reversals, adjustments), in Rupiah;
- credit on account = the sum of the participant's ContributionCredit movements.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from typing import Any, NamedTuple

from django.db.models import Exists, OuterRef, Q, Sum

from bpjsportal.core.progress import Progress

from .coverage import months_between, status_for
from .models import ContributionCredit, Coverage, LedgerEntry
from .rates import add_months


class EntryRow(NamedTuple):
    id: int
    kind: str
    amount: int
    months: int
    period_start: date | None
    reverses_id: int | None


@dataclass(frozen=True)
class LedgerFacts:
    paid_through: date | None = None
    active_since: date | None = None
    continuous_months: int = 0
    reactivations: int = 0
    balance: int = 0


ENTRY_FIELDS = ("id", "kind", "amount", "months", "period_start", "reverses_id")


def not_reversed() -> Any:
    """A filter for LedgerEntry querysets: no reversal points at the entry. Written as NOT EXISTS
    with the participant named (not `reversed_by__isnull`, a LEFT JOIN on the entry's id alone),
    so that on a cluster it runs on the node holding the participant's ledger."""
    return ~Exists(
        LedgerEntry.objects.filter(
            participant_id=OuterRef("participant_id"), reverses_id=OuterRef("pk")
        )
    )


def derive(entries: Iterable[EntryRow]) -> LedgerFacts:
    rows = list(entries)
    reversed_ids = {r.reverses_id for r in rows if r.reverses_id is not None}
    live = sorted(
        (
            r
            for r in rows
            if r.kind == LedgerEntry.Kind.PAYMENT
            and r.id not in reversed_ids
            and r.period_start is not None
        ),
        key=lambda r: (r.period_start, r.id),
    )
    balance = sum(r.amount for r in rows)
    if not live:
        return LedgerFacts(balance=balance)
    runs = 0
    run_start: date | None = None
    end: date | None = None  # exclusive
    for r in live:
        assert r.period_start is not None
        if end is None or r.period_start > end:
            runs += 1
            run_start = r.period_start
        candidate = add_months(r.period_start, r.months)
        end = candidate if end is None or candidate > end else end
    assert end is not None and run_start is not None
    paid_through = add_months(end, -1)
    return LedgerFacts(
        paid_through=paid_through,
        active_since=run_start,
        continuous_months=months_between(run_start, paid_through) + 1,
        reactivations=runs - 1,
        balance=balance,
    )


def facts_for(participant_id: int) -> LedgerFacts:
    qs = LedgerEntry.objects.filter(participant_id=participant_id).values_list(*ENTRY_FIELDS)
    return derive(EntryRow(*row) for row in qs)


@dataclass(frozen=True)
class Mismatch:
    participant_id: int
    field: str
    stored: object
    derived: object


def check_coverage(
    *, as_of: date | None = None, chunk_size: int = 5000, progress: Progress | None = None
) -> Iterator[Mismatch]:
    """Stream every Coverage row against the facts derived from the ledger (a merge join on
    participant id, both sides streamed). With `as_of`, the stored status is checked too.
    `progress` advances once per coverage row checked."""
    coverages = (
        Coverage.objects.order_by("participant_id")
        .values_list(
            "participant_id",
            "paid_through",
            "active_since",
            "continuous_months",
            "reactivations",
            "balance",
            "status",
            "start_month",
        )
        .iterator(chunk_size=chunk_size)
    )
    entries = (
        LedgerEntry.objects.order_by("participant_id", "id")
        .values_list("participant_id", *ENTRY_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    grouped = groupby(entries, key=lambda row: row[0])
    pending = next(grouped, None)
    for pid, paid, since, cont, react, balance, status, start in coverages:
        while pending is not None and pending[0] < pid:
            yield Mismatch(pending[0], "coverage", None, "missing coverage row")
            pending = next(grouped, None)
        rows: list[EntryRow] = []
        if pending is not None and pending[0] == pid:
            rows = [EntryRow(*row[1:]) for row in pending[1]]
            pending = next(grouped, None)
        facts = derive(rows)
        if progress is not None:
            progress.advance()
        stored = {
            "paid_through": paid,
            "active_since": since,
            "continuous_months": cont,
            "reactivations": react,
            "balance": balance,
        }
        for name, value in stored.items():
            if getattr(facts, name) != value:
                yield Mismatch(pid, name, value, getattr(facts, name))
        if as_of is not None:
            expected = status_for(paid_through=facts.paid_through, start_month=start, as_of=as_of)
            if expected != status:
                yield Mismatch(pid, "status", status, expected)
    while pending is not None:
        yield Mismatch(pending[0], "coverage", None, "missing coverage row")
        pending = next(grouped, None)
    # credit on account (PP 50/2025, contributions/credits.py): the row's credit is the sum of
    # its movements and never negative
    credits = (
        ContributionCredit.objects.values("participant_id")
        .annotate(total=Sum("amount"))
        .values_list("participant_id", "total")
    )
    totals = dict(credits)
    with_credit = Coverage.objects.filter(~Q(credit=0) | Q(pk__in=list(totals)))
    for pid, credit in with_credit.values_list("participant_id", "credit"):
        if credit != totals.get(pid, 0) or credit < 0:
            yield Mismatch(pid, "credit", credit, totals.get(pid, 0))
