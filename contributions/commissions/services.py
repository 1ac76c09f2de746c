"""The write paths of commissions: computing a month's statements (set-based SQL over the
ledger), approving them and marking them paid. One transaction each; CommissionError on any
broken rule, nothing half-written.

What a month's agent statement holds (rules: a `CommissionRule` row in force that month, from
Perdir 13/PERDIR.02/042022 as quoted in "908 - Probis Kepesertaan" p. 67):
- fee: each participant the agent registered in the month (Participant.registered_by, the
  league table's attribution of registrations). A NIK that was registered in the BPU segment
  before (a `PriorBpuNik` row dated before the registration day) earns nothing, and no fee is
  paid unless the agent has at least `min_new_niks` qualifying participants that month. The
  fee is `fee_with_jht` when the participant takes JHT, else `fee_jkk_jkm`.
- incentive: each payment entry posted in the month (LedgerEntry.created_at, Asia/Jakarta) for a
  participant the agent registered and not reversed by the end of the month, split by
  membership band: membership month n of a contribution month = months since the registration
  month (Coverage.start_month, "dihitung sejak diakuisisi oleh Perisai") + 1; months 1-24 earn
  band 1's rate, 25-60 band 2's, later months nothing. A payment's amount is spread over its
  months evenly (integer shares that add up to the amount).
- clawback: each reversal posted in the month of a payment whose incentive an earlier month's
  statement holds: minus that incentive, on the statement of the agent who earned it. A closed
  statement is never edited.
An office statement holds, for each agent who is a member of the office in the month
(PerisaiMembership), `office_share_bp` of that agent's statement total.

Posting time decides the month, so once a month is over nothing can change its figures:
approving is refused until the month has ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enrollment.models import Participant, StaffProfile

from ..coverage import month_start
from ..errors import ContributionError
from ..models import Coverage, LedgerEntry, Payment
from ..rates import add_months
from .models import (
    CommissionLine,
    CommissionRule,
    CommissionStatement,
    PerisaiMembership,
    PriorBpuNik,
    StatementStatus,
)

# Why a line is there (CommissionLine.note) -> what the agent reads.
NOTES: dict[str, Any] = {
    "new_nik": _("New participant, NIK never registered in BPU before: acquisition fee."),
    "below_minimum": _(
        "New participant, but fewer new NIKs this month than the minimum: no acquisition fee."
    ),
    "nik_seen": _("This NIK was registered in BPU before: no acquisition fee."),
    "band1": _("Contribution for membership months in the first band (e.g. 1-24)."),
    "band2": _("Contribution for membership months in the second band (e.g. 25-60)."),
    "beyond": _("Contribution for membership months after the last band: no incentive."),
    "reversed": _("The payment was reversed: its earlier incentive is taken back."),
    "office_share": _("The office's share of one of its agents' statements."),
}


class CommissionError(ContributionError):
    """A commission step was refused; nothing was written."""


@dataclass(frozen=True)
class MonthResult:
    month: date
    agent_statements: int
    office_statements: int
    lines: int


def parse_month(value: str | None) -> date:
    """'YYYY-MM' -> the first day of that month; CommissionError(bad_month) otherwise."""
    try:
        year, month = (value or "").split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return date(int(year), int(month), 1)
    except ValueError:
        raise CommissionError(
            "bad_month", _("Give the month as YYYY-MM, e.g. 2026-11."), value=value
        ) from None


def rule_for(month: date) -> CommissionRule:
    rule = (
        CommissionRule.objects.filter(effective_from__lte=month)
        .exclude(effective_to__lt=month)
        .order_by("-effective_from")
        .first()
    )
    if rule is None:
        raise CommissionError(
            "no_rule", _("No commission rule is in force for %(month)s.") % {"month": month}
        )
    return rule


def _bounds(month: date) -> tuple[datetime, datetime]:
    zone = timezone.get_default_timezone()
    start = datetime(month.year, month.month, 1, tzinfo=zone)
    nxt = add_months(month, 1)
    return start, datetime(nxt.year, nxt.month, 1, tzinfo=zone)


def _rupiah(amount: str, rate_bp: str) -> str:
    """`amount` (Rupiah, >= 0) times `rate_bp` basis points, rounded half up to whole Rupiah."""
    return f"((2 * {amount} * {rate_bp} + 10000) / 20000)::bigint"


def _t(model: Any) -> str:
    return str(model._meta.db_table)


P, S, LE, CV = _t(Participant), _t(StaffProfile), _t(LedgerEntry), _t(Coverage)
PAY = _t(Payment)
ST, LN, NK, MB = (
    _t(CommissionStatement),
    _t(CommissionLine),
    _t(PriorBpuNik),
    _t(PerisaiMembership),
)

# The month's agent lines, into a temporary table (parameters: see compute_month).
AGENT_LINES = f"""
CREATE TEMP TABLE commission_tmp ON COMMIT DROP AS
WITH newp AS (
    SELECT p.id AS participant_id, p.registered_by_id AS agent_id, p.jht,
           NOT EXISTS (
               SELECT 1 FROM {NK} n WHERE n.nik_digest = p.nik_digest
                 AND n.first_registered_on < (p.created_at AT TIME ZONE %(tz)s)::date
           ) AS fresh
    FROM {P} p JOIN {S} s ON s.id = p.registered_by_id AND s.role = 'agent'
    WHERE p.created_at >= %(start)s AND p.created_at < %(end)s
), counts AS (
    SELECT agent_id, count(*) FILTER (WHERE fresh) AS q FROM newp GROUP BY agent_id
), pay AS (
    SELECT e.id, e.participant_id, e.amount, e.months, e.period_start,
           p.registered_by_id AS agent_id,
           ((extract(year FROM e.period_start) - extract(year FROM c.start_month)) * 12
             + extract(month FROM e.period_start) - extract(month FROM c.start_month))::int + 1
             AS n0
    FROM {LE} e
    JOIN {P} p ON p.id = e.participant_id
    JOIN {S} s ON s.id = p.registered_by_id AND s.role = 'agent'
    JOIN {CV} c ON c.participant_id = e.participant_id
    -- every join between participant-keyed tables names the participant: on a cluster the
    -- rows are then on the same node (docs/operations.md, "Distributing by participant")
    JOIN {PAY} py ON py.participant_id = e.participant_id AND py.id = e.payment_id
    WHERE e.kind = 'payment' AND e.created_at >= %(start)s AND e.created_at < %(end)s
      -- a month paid from credit on account (contributions/credits.py) is money that already
      -- earned its incentive when it was paid in: never twice
      AND py.channel <> %(credit_channel)s
      AND NOT EXISTS (
          SELECT 1 FROM {LE} r
          WHERE r.participant_id = e.participant_id AND r.reverses_id = e.id
            AND r.kind = 'reversal' AND r.created_at < %(end)s
      )
), split AS (
    SELECT pay.*, m1, m2, pay.months - m1 - m2 AS m3,
           greatest(pay.n0, %(b1)s + 1) AS n0b2, greatest(pay.n0, %(b2)s + 1) AS n0b3,
           pay.amount * m1 / pay.months AS a1,
           pay.amount * (m1 + m2) / pay.months - pay.amount * m1 / pay.months AS a2,
           pay.amount - pay.amount * (m1 + m2) / pay.months AS a3
    FROM pay
    CROSS JOIN LATERAL (
        SELECT greatest(0, least(pay.n0 + pay.months - 1, %(b1)s) - pay.n0 + 1) AS m1,
               greatest(0, least(pay.n0 + pay.months - 1, %(b2)s)
                           - greatest(pay.n0, %(b1)s + 1) + 1) AS m2
    ) m
)
SELECT n.agent_id, n.participant_id, 'fee'::text AS kind, NULL::bigint AS entry_id,
       %(month)s::date AS covered_from, 0 AS months, NULL::int AS m_from, NULL::int AS m_to,
       0::bigint AS base, 0 AS rate_bp,
       (CASE WHEN NOT n.fresh OR c.q < %(minimum)s THEN 0
             WHEN n.jht THEN %(fee_jht)s ELSE %(fee)s END)::bigint AS amount,
       CASE WHEN NOT n.fresh THEN 'nik_seen' WHEN c.q < %(minimum)s THEN 'below_minimum'
            ELSE 'new_nik' END AS note
FROM newp n JOIN counts c USING (agent_id)
UNION ALL
SELECT sp.agent_id, sp.participant_id, 'incentive', sp.id, sp.period_start, sp.m1,
       sp.n0, sp.n0 + sp.m1 - 1, sp.a1, %(r1)s, {_rupiah("sp.a1", "%(r1)s")}, 'band1'
FROM split sp WHERE sp.m1 > 0
UNION ALL
SELECT sp.agent_id, sp.participant_id, 'incentive', sp.id,
       (sp.period_start + make_interval(months => sp.n0b2 - sp.n0))::date, sp.m2,
       sp.n0b2, sp.n0b2 + sp.m2 - 1, sp.a2, %(r2)s, {_rupiah("sp.a2", "%(r2)s")}, 'band2'
FROM split sp WHERE sp.m2 > 0
UNION ALL
SELECT sp.agent_id, sp.participant_id, 'incentive', sp.id,
       (sp.period_start + make_interval(months => sp.n0b3 - sp.n0))::date, sp.m3,
       sp.n0b3, sp.n0b3 + sp.m3 - 1, sp.a3, 0, 0, 'beyond'
FROM split sp WHERE sp.m3 > 0
UNION ALL
SELECT st.agent_id, r.participant_id, 'clawback', r.id, l.covered_from, l.months,
       l.membership_from, l.membership_to, -l.base, l.rate_bp, -l.amount, 'reversed'
FROM {LE} r
JOIN {LN} l ON l.ledger_entry_id = r.reverses_id AND l.kind = 'incentive'
JOIN {ST} st ON st.id = l.statement_id AND st.month < %(month)s
WHERE r.kind = 'reversal' AND r.created_at >= %(start)s AND r.created_at < %(end)s
"""  # noqa: S608 - identifiers from the models' _meta, values are bind parameters

UPSERT_AGENT_STATEMENTS = f"""
INSERT INTO {ST} (kind, agent_id, month, rule_id, status, new_participants, qualifying,
                  fee_total, incentive_total, clawback_total, office_total, total, computed_at,
                  payment_reference)
SELECT DISTINCT 'agent', t.agent_id, %(month)s, %(rule)s, 'draft', 0, 0, 0, 0, 0, 0, 0, %(now)s, ''
FROM commission_tmp t
ON CONFLICT (agent_id, month) WHERE kind = 'agent' DO NOTHING
"""  # noqa: S608

CLEAR_DRAFT_LINES = f"""
DELETE FROM {LN} WHERE statement_id IN (
    SELECT id FROM {ST} WHERE month = %(month)s AND kind = %(kind)s AND status = 'draft')
"""  # noqa: S608

INSERT_AGENT_LINES = f"""
INSERT INTO {LN} (statement_id, kind, participant_id, ledger_entry_id, covered_from, months,
                  membership_from, membership_to, base, rate_bp, amount, note)
SELECT st.id, t.kind, t.participant_id, t.entry_id, t.covered_from, t.months, t.m_from, t.m_to,
       t.base, t.rate_bp, t.amount, t.note
FROM commission_tmp t
JOIN {ST} st ON st.kind = 'agent' AND st.agent_id = t.agent_id AND st.month = %(month)s
            AND st.status = 'draft'
ORDER BY st.id, t.kind, t.participant_id, t.entry_id
"""  # noqa: S608

OFFICE_LINES = f"""
CREATE TEMP TABLE commission_office_tmp ON COMMIT DROP AS
SELECT DISTINCT ON (m.agent_id) m.office_id, s.id AS source_id, s.total
FROM {MB} m
JOIN {ST} s ON s.kind = 'agent' AND s.agent_id = m.agent_id AND s.month = %(month)s
WHERE m.from_month <= %(month)s AND (m.until_month IS NULL OR m.until_month > %(month)s)
ORDER BY m.agent_id, m.from_month DESC
"""  # noqa: S608

UPSERT_OFFICE_STATEMENTS = f"""
INSERT INTO {ST} (kind, office_id, month, rule_id, status, new_participants, qualifying,
                  fee_total, incentive_total, clawback_total, office_total, total, computed_at,
                  payment_reference)
SELECT DISTINCT 'office', t.office_id, %(month)s, %(rule)s, 'draft', 0, 0, 0, 0, 0, 0, 0, %(now)s,
       ''
FROM commission_office_tmp t
ON CONFLICT (office_id, month) WHERE kind = 'office' DO NOTHING
"""  # noqa: S608

INSERT_OFFICE_LINES = f"""
INSERT INTO {LN} (statement_id, kind, source_statement_id, months, base, rate_bp, amount, note)
SELECT st.id, 'office_share', t.source_id, 0, t.total, %(share)s,
       round(t.total::numeric * %(share)s / 10000)::bigint, 'office_share'
FROM commission_office_tmp t
JOIN {ST} st ON st.kind = 'office' AND st.office_id = t.office_id AND st.month = %(month)s
            AND st.status = 'draft'
ORDER BY st.id, t.source_id
"""  # noqa: S608

TOTALS = f"""
UPDATE {ST} st SET
    rule_id = %(rule)s, computed_at = %(now)s,
    new_participants = agg.new_participants, qualifying = agg.qualifying,
    fee_total = agg.fee, incentive_total = agg.incentive, clawback_total = agg.clawback,
    office_total = agg.office, total = agg.total
FROM (
    SELECT s.id,
           count(l.id) FILTER (WHERE l.kind = 'fee') AS new_participants,
           count(l.id) FILTER (WHERE l.kind = 'fee' AND l.note <> 'nik_seen') AS qualifying,
           COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'fee'), 0) AS fee,
           COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'incentive'), 0) AS incentive,
           COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'clawback'), 0) AS clawback,
           COALESCE(sum(l.amount) FILTER (WHERE l.kind = 'office_share'), 0) AS office,
           COALESCE(sum(l.amount), 0) AS total
    FROM {ST} s LEFT JOIN {LN} l ON l.statement_id = s.id
    WHERE s.month = %(month)s AND s.kind = %(kind)s AND s.status = 'draft'
    GROUP BY s.id
) agg
WHERE st.id = agg.id
"""  # noqa: S608


def _check_month(month: date) -> None:
    if month.day != 1:
        raise CommissionError("bad_month", _("A statement month starts on its first day."))
    if month > month_start(timezone.localdate()):
        raise CommissionError(
            "future_month", _("%(month)s has not started yet.") % {"month": f"{month:%Y-%m}"}
        )


@transaction.atomic
def compute_month(*, month: date) -> MonthResult:
    """(Re)compute the draft statements of `month` for every agent and office with something
    in it. Approved and paid statements are left as they are. Set-based: a handful of
    statements whatever the number of participants. Idempotent."""
    _check_month(month)
    rule = rule_for(month)
    start, end = _bounds(month)
    params: dict[str, Any] = {
        "credit_channel": Payment.Channel.CREDIT.value,
        "now": timezone.now(),  # the one clock (not the database's now())
        "month": month,
        "start": start,
        "end": end,
        "tz": settings.TIME_ZONE,
        "rule": rule.pk,
        "fee": rule.fee_jkk_jkm,
        "fee_jht": rule.fee_with_jht,
        "minimum": rule.min_new_niks,
        "b1": rule.band1_last_month,
        "b2": rule.band2_last_month,
        "r1": rule.band1_rate_bp,
        "r2": rule.band2_rate_bp,
        "share": rule.office_share_bp,
    }
    with connection.cursor() as cur:
        # one computation of a month at a time (a second waits, then redoes it)
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtext('commissions'), %s)", [month.toordinal()]
        )
        # the month's drafts stay drafts until this commits (approve_statement waits)
        cur.execute(
            f"SELECT id FROM {ST} WHERE month = %s AND status = 'draft' FOR UPDATE",  # noqa: S608
            [month],
        )
        # ON COMMIT DROP, but a caller's outer transaction may compute twice before committing
        cur.execute("DROP TABLE IF EXISTS commission_tmp, commission_office_tmp")
        cur.execute(AGENT_LINES, params)
        cur.execute(UPSERT_AGENT_STATEMENTS, params)
        cur.execute(CLEAR_DRAFT_LINES, {**params, "kind": "agent"})
        cur.execute(INSERT_AGENT_LINES, params)
        lines = cur.rowcount
        cur.execute(TOTALS, {**params, "kind": "agent"})
        agents = cur.rowcount
        cur.execute(OFFICE_LINES, params)
        cur.execute(UPSERT_OFFICE_STATEMENTS, params)
        cur.execute(CLEAR_DRAFT_LINES, {**params, "kind": "office"})
        cur.execute(INSERT_OFFICE_LINES, params)
        lines += cur.rowcount
        cur.execute(TOTALS, {**params, "kind": "office"})
        offices = cur.rowcount
    return MonthResult(month, agents, offices, lines)


def _locked(statement_id: int) -> CommissionStatement:
    try:
        return CommissionStatement.objects.select_for_update().get(pk=statement_id)
    except CommissionStatement.DoesNotExist:
        raise CommissionError("not_found", _("No such commission statement.")) from None


@transaction.atomic
def approve_statement(*, statement_id: int, by: Any) -> CommissionStatement:
    """draft -> approved, once the month is over. From then on the database refuses any change
    to the statement or its lines."""
    st = _locked(statement_id)
    if st.status != StatementStatus.DRAFT:
        raise CommissionError(
            f"already_{st.status}",
            _("This statement is already %(status)s.")
            % {"status": str(st.get_status_display()).lower()},
        )
    if st.month >= month_start(timezone.localdate()):
        raise CommissionError(
            "month_not_over",
            _("%(month)s is not over yet: approve its statement from the next month on.")
            % {"month": f"{st.month:%Y-%m}"},
        )
    month_end = _bounds(st.month)[1]
    if st.computed_at < month_end:
        # a draft computed while its month ran misses what was posted after it: a payment
        # never paid, a late reversal never clawed back
        raise CommissionError(
            "computed_too_early",
            _("This draft was computed before %(month)s ended: compute the month again first.")
            % {"month": f"{st.month:%Y-%m}"},
        )
    if st.kind == CommissionStatement.Kind.OFFICE and (
        CommissionLine.objects.filter(
            statement=st, source_statement__status=StatementStatus.DRAFT
        ).exists()
    ):
        raise CommissionError(
            "agents_not_approved",
            _("Approve this office's agents' statements first: its share is taken from them."),
        )
    st.status = StatementStatus.APPROVED
    st.approved_at = timezone.now()
    st.approved_by = by
    st.save(update_fields=["status", "approved_at", "approved_by"])
    return st


@transaction.atomic
def mark_paid(*, statement_id: int, by: Any, reference: str = "") -> CommissionStatement:
    """approved -> paid (the payout was made; `reference`: the bank transfer's)."""
    st = _locked(statement_id)
    if st.status == StatementStatus.PAID:
        raise CommissionError("already_paid", _("This statement is already paid."))
    if st.status != StatementStatus.APPROVED:
        raise CommissionError("not_approved", _("Only an approved statement can be marked paid."))
    reference = (reference or "").strip()
    if len(reference) > 64 or "\x00" in reference:
        raise CommissionError("bad_reference", _("The payment reference is at most 64 characters."))
    st.status = StatementStatus.PAID
    st.paid_at = timezone.now()
    st.paid_by = by
    st.payment_reference = reference
    st.save(update_fields=["status", "paid_at", "paid_by", "payment_reference"])
    return st
