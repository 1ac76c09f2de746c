"""Step 4 of the event build: the money of the range, one row per ledger movement, and its
programme split (contributions.rules_sql.programme_split)."""

from __future__ import annotations

from contributions import rules_sql
from contributions.rules_sql import T

# The build's copies of the rate schedule, the discounts and the occupation history (rb_rates,
# rb_discounts, rb_history: rules_sql.copy_split_sources), made by group.open_build for a build
# and by refresh_day for a refresh, and read by the programme split and the history probe
# below: the statements over the build's temporary tables then read no other table but the
# participants' and the ledger's. (Citus cannot plan the split's correlated subqueries over the
# sharded history next to a CTE or subquery; PostgreSQL plans the copies as it did the tables:
# a few rows, and the history of those who changed occupation, indexed alike.)
SOURCES_PREFIX = "rb"
SOURCES = rules_sql.copied_sources(SOURCES_PREFIX)

# --- step 4: the money of the range, one row per ledger movement --------------------------------
_MONEY_TEMPLATE = """
CREATE TEMP TABLE rb_money ON COMMIT DROP AS
WITH moves AS (
    {payments}
    UNION ALL
    SELECT (r.created_at AT TIME ZONE %(tz)s)::date, r.participant_id, -1, r.amount,
           p.collected_by_id, -1, e.period_start, e.months, p.payer_type
    FROM {ledger} r
    JOIN {ledger} e ON e.participant_id = r.participant_id AND e.id = r.reverses_id
    LEFT JOIN {payment} p ON p.participant_id = e.participant_id AND p.id = e.payment_id
    WHERE r.kind = 'reversal' AND r.created_at >= %(start_ts)s AND r.created_at < %(end)s
      AND r.id <= %(mark)s AND r.id > %(low)s{scope_r}
    UNION ALL
    SELECT (created_at AT TIME ZONE %(tz)s)::date, participant_id, 0, amount, NULL, 0, NULL,
           NULL, NULL
    FROM {ledger}
    WHERE kind = 'adjustment' AND created_at >= %(start_ts)s AND created_at < %(end)s
      AND id <= %(mark)s AND id > %(low)s{scope}
)
SELECT m.day, m.participant_id AS pid, m.collected_by_id, m.payments, m.amount, m.sign,
       m.period_start, m.months, m.payer_type, pp.declared_income, pp.jht, o.sector,
       {history} AS hist_pid{group}
FROM moves m
LEFT JOIN {participants} pp ON pp.{pid} = m.participant_id{only_paid}
LEFT JOIN {occupation} o ON o.code = pp.occupation_id
"""

_MONEY_PAYMENTS = f"""SELECT (p.paid_at AT TIME ZONE %(tz)s)::date AS day, e.participant_id,
           1 AS sign, e.amount, p.collected_by_id, 1 AS payments, e.period_start, e.months,
           p.payer_type
    FROM {T.payment} p
    JOIN {T.ledger} e ON e.participant_id = p.participant_id AND e.payment_id = p.id
                     AND e.kind = 'payment'
    WHERE p.paid_at >= %(start_ts)s AND p.paid_at < %(end)s AND e.id <= %(mark)s
      AND e.id > %(low)s"""  # noqa: S608

# A group's payments of the range: from rb_entry (same entries: kind payment, id up to the mark,
# paid before the end, participant in the group; the local day from the range's first day).
# No lower id bound: only the build uses it, and it reads from the first entry (`low` = 0); the
# refresh, which reads above an old mark, uses _MONEY_PAYMENTS.
_CHUNK_MONEY_PAYMENTS = """SELECT d AS day, pid AS participant_id, 1 AS sign, amount,
           collected_by_id, 1 AS payments, period_start, months, payer_type
    FROM rb_entry WHERE d >= %(start)s"""


def money_sql(*, chunk: bool) -> str:
    """rb_money: the range's ledger movements, one row each; with `chunk`, only those of the
    participants in rb_pa (the build's current group of provinces), the payments taken from
    rb_entry and the income and JHT choice from rb_pa (no second read of the group's payments
    and ledger rows, no look-up of each payment's participant), with the participant's
    dimension group and registration day (for the group events)."""
    only = " AND {} IN (SELECT pid FROM rb_pa)" if chunk else ""
    return _MONEY_TEMPLATE.format(
        payments=_CHUNK_MONEY_PAYMENTS if chunk else _MONEY_PAYMENTS,
        participants="rb_pa" if chunk else T.participant,
        pid="pid" if chunk else "id",
        scope_r=only.format("r.participant_id"),
        scope=only.format("participant_id"),
        group=", pp.gid, pp.reg_day" if chunk else "",
        only_paid="" if chunk else " AND m.period_start IS NOT NULL",
        ledger=T.ledger,
        payment=T.payment,
        occupation=T.occupation,
        history=rules_sql.has_history("m.participant_id", SOURCES.history),
    )


MONEY_SQL = money_sql(chunk=False)
# (The split of a payment entry, or of the entry a reversal cancels, uses that entry's months
# and its participant's income, JHT choice and sector: a reversal is always of the same
# participant's payment, contributions.services.reverse_payment.)

# The programme split of one (income, JHT, sector, first month, months): computed once per
# distinct key, by the contributions rule (rules_sql.programme_split = rates.quote_contribution),
# from the build's (or the refresh's) copies of the schedule, discounts and history.
_SPLIT = rules_sql.programme_split(
    period_start="k.period_start",
    months="k.months",
    declared_income="k.declared_income",
    jht="k.jht",
    sector="k.sector",
    payer_type="k.payer_type",
    history_pid="k.hist_pid",
    sources=SOURCES,
)
SPLIT_SQL = f"""
CREATE TEMP TABLE {{table}} ON COMMIT DROP AS
SELECT k.period_start, k.months, k.declared_income, k.jht, k.sector, k.payer_type, k.hist_pid,
       sp.jkk, sp.jkm, sp.jht AS jht_amt
FROM (SELECT DISTINCT period_start, months, declared_income, jht, sector, payer_type, hist_pid
      FROM {{source}} WHERE period_start IS NOT NULL) k
CROSS JOIN LATERAL ({_SPLIT}) sp
"""  # noqa: S608

# Money rows with their split (reversals carry the split of the payment they cancel, negated).
MONEY_SPLIT_VIEW = """
SELECT m.day, m.pid, m.collected_by_id, m.payments, m.amount,{group}
       m.sign * COALESCE(s.jkk, 0) AS jkk, m.sign * COALESCE(s.jkm, 0) AS jkm,
       m.sign * COALESCE(s.jht_amt, 0) AS jht,
       m.amount - m.sign * COALESCE(s.jkk + s.jkm + s.jht_amt, 0) AS other
FROM {money} m
LEFT JOIN {split} s ON s.period_start = m.period_start AND s.months = m.months
     AND s.declared_income = m.declared_income AND s.jht = m.jht AND s.sector = m.sector
     AND s.payer_type = m.payer_type AND s.hist_pid IS NOT DISTINCT FROM m.hist_pid
"""
