"""The demo's money (steps of enrollment.demo.run_demo): each worker's payments since
registration, the ledger and coverage; then commission statements and follow-up outcomes.

Payments: each worker pays by a payer profile (contributions/shape.py, shared with the scale
generator: monthly, in advance, late, lapse-and-return, stopped; sponsored workers monthly
through their partner). The profile only says *when* a worker pays and *how many months*;
*which* months a payment covers and *what it costs* come from the real rules - the first month
to pay (arrears first, the current month after a lapse: a reactivation without back-cover,
coverage.first_month_to_pay) and the quote (rates.quote_contribution, PP 50/2025 discount and
budget-paid exceptions included), exactly what record_payment would accept on that day. The
rows go in set-based (COPY of payments and ledger entries, one UPDATE of coverage), and the
coverage facts are derived from those ledger entries by ledger.derive, the same derivation
`manage.py check_ledger` proves.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from enrollment import shape as enrollment_shape
from enrollment import unique_keys
from enrollment.demo import DemoContext, bulk_session, register_step
from enrollment.models import Participant, PayerType, StaffProfile, programmes_for

from . import coverage as rules
from . import shape
from .commissions.models import CommissionStatement
from .commissions.services import approve_statement, compute_month, mark_paid
from .follow_up.models import FollowUpOutcome, Outcome
from .follow_up.services import record_outcome
from .ledger import EntryRow, derive
from .models import LedgerEntry, Payment
from .rates import QuoteError, add_months, quote_contribution
from .services import _reason_for

REFERENCE_PREFIX = "DEMO-"
SELF_CHANNELS = ("bank", "retail", "ewallet", "agent")
PAYMENT_COLUMNS = (
    "id",
    "participant_id",
    "amount",
    "months",
    "period_start",
    "payer",
    "payer_type",
    "channel",
    "reference",
    "paid_at",
    "collected_by_id",
    "sponsor_id",
    "reactivation",
    "created_at",
)
LEDGER_COLUMNS = (
    "participant_id",
    "kind",
    "amount",
    "months",
    "period_start",
    "payment_id",
    "reason",
    "created_at",
)


@cache
def _price(income: int, jht: bool, sector: str, months: int, first: date, payer_type: str) -> int:
    return quote_contribution(
        declared_income=income,
        programmes=programmes_for(jht=jht),
        months=months,
        first_month=first,
        sector=sector,
        payer_type=payer_type,
    ).total


@cache
def _due(first_unpaid: date, as_of: date) -> tuple[date, bool]:
    """(first month to pay, lapsed?) on `as_of` for a worker whose first unpaid month is
    `first_unpaid`: the rules' answer depends on nothing else (a worker who never paid and
    registered that month is in the same place), so it is asked once per pair."""
    lapsed = rules.status_for(paid_through=None, start_month=first_unpaid, as_of=as_of)
    first = rules.first_month_to_pay(paid_through=None, start_month=first_unpaid, as_of=as_of)
    return first, lapsed == rules.LAPSED


class _Cover:
    """A worker's coverage as the payments move it (only what the rules read)."""

    def __init__(self, start_month: date) -> None:
        self.start_month = start_month
        self.paid_through: date | None = None


def _at(month: date, offset_days: int, seconds: int) -> datetime:
    day = month + timedelta(days=offset_days)
    return timezone.make_aware(datetime.combine(day, time(7))) + timedelta(seconds=seconds)


def worker_payments(
    row: dict[str, Any], *, seed: int, now: datetime, this_month: date, rank: int
) -> Iterator[dict[str, Any]]:
    """The payments one worker made from registration to `now`, by the profile its seeded
    random stream picks, each covering and costing what the rules say on its day. `rank`: the
    worker's place in registration order - the random stream, channel and day are keyed by it,
    not by the database id, so the same seed gives the same history whatever ids the sequence
    hands out."""
    pid = row["id"]
    rng = random.Random(seed * 1_000_003 + rank)
    sponsored = row["partner_id"] is not None and rng.random() < enrollment_shape.SPONSORED_SHARE
    weights = [w for _p, w in shape.PROFILES]
    profile = "monthly" if sponsored else rng.choices(shape.PROFILE_NAMES, weights)[0]
    h = rng.randrange(shape.H_VALUES)
    length = shape.months_per_payment(profile, h)
    registered = row["created_at"]
    start = rules.month_start(timezone.localdate(registered))
    kmax = rules.months_between(start, this_month)
    cover = _Cover(start)
    payer_type = row["payer_type"] if sponsored else PayerType.SELF
    channel = "partner" if sponsored else SELF_CHANNELS[rank % len(SELF_CHANNELS)]
    collected_by = None
    if channel == "agent":
        collected_by = row["registered_by_id"]
        channel = "agent" if collected_by else "bank"
    # days from the month's first day: sponsors pay on the 1st, late payers 40 days on, the
    # others from 12 days before the month (paying the next month ahead) to the 10th
    offset = 0 if sponsored else shape.LATE_DAYS if profile == "late" else rank % 22 - 12
    last_paid = registered
    for k in range(kmax + 1):
        if not shape.pays(profile, k, l=length, h=h, kmax=kmax):
            continue
        month = add_months(start, k)
        # the first payment of an agent's worker is often collected at the registration itself
        paid_at = max(_at(month, offset, (rank * 7919) % 36000), last_paid + timedelta(minutes=30))
        if paid_at > now - timedelta(minutes=5):
            break
        as_of = timezone.localdate(paid_at)
        first, lapsed = _due(rules.next_unpaid(cover.paid_through, start), as_of)
        try:
            amount = _price(
                row["declared_income"], row["jht"], row["sector"], length, first, payer_type
            )
        except QuoteError:
            continue  # a month no rate covers: this worker skips it, as a payer would be refused
        reason = _reason_for(lapsed, cover, first)  # type: ignore[arg-type]
        cover.paid_through = add_months(first, length - 1)
        last_paid = paid_at
        yield {
            "participant_id": pid,
            "amount": amount,
            "months": length,
            "period_start": first,
            "payer": "sponsor" if sponsored else "agent" if collected_by else "participant",
            "payer_type": payer_type,
            "channel": channel,
            "reference": f"{REFERENCE_PREFIX}{row['kpj_number']}-{first:%Y%m}",
            "paid_at": paid_at,
            "collected_by_id": collected_by,
            "sponsor_id": row["partner_id"] if sponsored else None,
            "reactivation": lapsed,
            "created_at": paid_at,
            "reason": reason,
        }


def _coverage_row(
    row: dict[str, Any], payments: list[dict[str, Any]], today: date
) -> tuple[Any, ...]:
    start = rules.month_start(timezone.localdate(row["created_at"]))
    facts = derive(
        EntryRow(i, LedgerEntry.Kind.PAYMENT, p["amount"], p["months"], p["period_start"], None)
        for i, p in enumerate(payments, 1)
    )
    status = rules.status_for(paid_through=facts.paid_through, start_month=start, as_of=today)
    lapsed_since = (
        rules.lapse_date(rules.next_unpaid(facts.paid_through, start))
        if status == rules.LAPSED
        else None
    )
    payer_type = payments[-1]["payer_type"] if payments else PayerType.SELF
    return (
        row["id"],
        start,
        status,
        facts.paid_through,
        facts.active_since,
        lapsed_since,
        facts.continuous_months,
        facts.reactivations,
        facts.balance,
        payer_type,
    )


def seed_payments(ctx: DemoContext) -> dict[str, int]:
    """Every demo worker's payments, ledger entries and coverage row; skipped when demo
    payments exist. Participants with any ledger entry already are left alone."""
    if Payment.objects.filter(reference__startswith=REFERENCE_PREFIX).exists():
        return {"payments": 0}
    today = ctx.today
    this_month = rules.month_start(today)
    workers: list[dict[str, Any]] = [
        dict(row)
        for row in Participant.objects.filter(ledger_entries__isnull=True)
        .order_by("id")
        .values(
            "id",
            "kpj_number",
            "created_at",
            "declared_income",
            "jht",
            "partner_id",
            "registered_by_id",
            sector=F("occupation__sector"),
            payer_type=F("partner__payer_type"),
        )
    ]
    payments: list[dict[str, Any]] = []
    coverage: list[tuple[Any, ...]] = []
    for rank, row in enumerate(workers):
        mine = list(
            worker_payments(row, seed=ctx.seed, now=ctx.now, this_month=this_month, rank=rank)
        )
        payments.extend(mine)
        coverage.append(_coverage_row(row, mine, today))
    with transaction.atomic(), connection.cursor() as cursor:
        bulk_session(cursor)
        if payments:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('contributions_payment', 'id')) "
                "FROM generate_series(1, %s)",
                [len(payments)],
            )
            for p, (pk,) in zip(payments, cursor.fetchall(), strict=True):
                p["id"] = pk
        raw = cursor.cursor  # psycopg's own cursor: COPY
        with raw.copy(
            f"COPY contributions_payment ({', '.join(PAYMENT_COLUMNS)}) FROM STDIN"
        ) as cp:
            for p in payments:
                cp.write_row([p[c] for c in PAYMENT_COLUMNS])
        if payments:  # ids from the sequence above, in order
            unique_keys.claim_stored("payments", after_id=min(p["id"] for p in payments) - 1)
        with raw.copy(
            f"COPY contributions_ledgerentry ({', '.join(LEDGER_COLUMNS)}) FROM STDIN"
        ) as cp:
            for p in payments:
                cp.write_row(
                    [
                        p["participant_id"],
                        LedgerEntry.Kind.PAYMENT,
                        p["amount"],
                        p["months"],
                        p["period_start"],
                        p["id"],
                        p["reason"],
                        p["created_at"],
                    ]
                )
        columns: list[Any] = list(zip(*coverage, strict=True)) if coverage else [()] * 10
        # the workers' coverage rows (the demo's workers step writes participant rows only)
        cursor.execute(
            """INSERT INTO contributions_coverage AS c (participant_id, start_month, status,
                   paid_through, active_since, lapsed_since, continuous_months, reactivations,
                   balance, payer_type, credit, updated_at)
               SELECT v.*, 0, now()
               FROM unnest(%s::bigint[], %s::date[], %s::text[], %s::date[], %s::date[],
                           %s::date[], %s::int[], %s::int[], %s::bigint[], %s::text[])
                    AS v(id, start_month, status, paid_through, active_since, lapsed_since,
                         continuous_months, reactivations, balance, payer_type)
               ON CONFLICT (participant_id) DO UPDATE SET start_month = excluded.start_month,
                   status = excluded.status, paid_through = excluded.paid_through,
                   active_since = excluded.active_since, lapsed_since = excluded.lapsed_since,
                   continuous_months = excluded.continuous_months,
                   reactivations = excluded.reactivations, balance = excluded.balance,
                   payer_type = excluded.payer_type, updated_at = excluded.updated_at""",
            [list(col) for col in columns],
        )
    with connection.cursor() as cursor:  # fresh statistics for the steps that read them
        cursor.execute(
            "ANALYZE enrollment_participant, contributions_payment, contributions_ledgerentry, "
            "contributions_coverage"
        )
    statuses: dict[str, int] = {}
    for cov_row in coverage:
        statuses[cov_row[2]] = statuses.get(cov_row[2], 0) + 1
    return {
        "payments": len(payments),
        "reactivations": sum(1 for p in payments if p["reactivation"]),
        **{f"status_{k}": v for k, v in sorted(statuses.items())},
    }


def _demo_admin() -> Any:
    return get_user_model().objects.filter(username="admin").first()


COMMISSION_MONTHS = 6  # the statements of this month and the five before


def seed_commissions(ctx: DemoContext) -> dict[str, int]:
    """The agents' commission statements of the last COMMISSION_MONTHS months
    (commissions.compute_month): the months before last approved and paid, last month
    approved, this month a draft. Skipped when statements exist."""
    if CommissionStatement.objects.exists() or not Payment.objects.exists():
        return {"commission_statements": 0}
    admin = _demo_admin()
    this_month = rules.month_start(ctx.today)
    month = add_months(this_month, 1 - COMMISSION_MONTHS)
    computed = 0
    while month <= this_month:
        computed += compute_month(month=month).agent_statements
        if admin is not None and month < this_month:
            for st in CommissionStatement.objects.filter(month=month).order_by("id"):
                approve_statement(statement_id=st.pk, by=admin)
                if month < add_months(this_month, -1):
                    mark_paid(statement_id=st.pk, by=admin, reference=f"DEMO-PAYOUT-{month:%Y%m}")
        month = add_months(month, 1)
    return {"commission_statements": computed}


FOLLOW_UPS_PER_AGENT = 12
FOLLOW_UP_MIX = [
    (Outcome.PROMISED, 5),
    (Outcome.CANNOT_PAY, 3),
    (Outcome.WRONG_NUMBER, 1),
    (Outcome.MOVED, 1),
    (Outcome.PAID, 2),
]


def seed_follow_ups(ctx: DemoContext) -> dict[str, int]:
    """A few outcomes each of the named agents recorded today for workers in arrears
    (follow_up.record_outcome: promises a few days ahead, cannot pay, wrong number, ...).
    Skipped when outcomes exist."""
    if FollowUpOutcome.objects.exists():
        return {"follow_up_outcomes": 0}
    rng = random.Random(ctx.seed + 1)
    outcomes = [o for o, w in FOLLOW_UP_MIX for _ in range(w)]
    recorded = 0
    agents = StaffProfile.objects.select_related("user").filter(
        user__username__in=["agent1", "agent2", "agent3"]
    )
    for agent in agents.order_by("user__username"):
        behind = list(
            Participant.objects.filter(
                registered_by=agent, coverage__status__in=["grace", "lapsed"]
            )
            .order_by("id")
            .values_list("id", flat=True)
        )
        chosen = rng.sample(behind, min(FOLLOW_UPS_PER_AGENT, len(behind)))
        for participant in Participant.objects.filter(pk__in=chosen).order_by("id"):
            outcome = rng.choice(outcomes)
            record_outcome(
                participant=participant,
                outcome=outcome,
                recorded_by=agent.user,
                promised_date=ctx.today + timedelta(days=rng.randint(1, 10))
                if outcome == Outcome.PROMISED
                else None,
            )
            recorded += 1
    return {"follow_up_outcomes": recorded}


def register_demo_steps() -> None:
    register_step(30, "payments", seed_payments)
    register_step(60, "commission statements", seed_commissions)
    register_step(70, "follow-up outcomes", seed_follow_ups)
