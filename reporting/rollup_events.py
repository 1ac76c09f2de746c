"""Event-based build of the daily rollups: every day of a range in one pass over the ledger.

The per-day build (`rollups.build_day`) recomputes every participant's paid-through month from
the whole ledger for each day, so a year costs 365 scans of the ledger. Here, for a range of
days P = start - 1 .. E = end:

1. *Paid-through segments.* Per participant, the days on which the next unpaid month N changes:
   a payment entry is live from its payment's local day to its reversal's local day (or for
   ever); N = (latest live paid month) + 1 month, or the start month while nothing is live
   (`contributions.coverage.next_unpaid`). Without reversals this is a running max over the
   payment days (one window over the ledger); the few participants with a reversal get the
   exact max over live entries at each of their change days.
2. *Status changes.* For a constant N, the status only moves forward as days pass: active
   while D < grace_from(N), lapsed from lapsed_from(N), grace in between. Both days come from a
   small calendar computed in Python with `coverage.month_start` and `coverage.lapse_threshold`
   (the single source of the thresholds). Each segment gives a row only where the status
   changes (at its first day, against the day before, and on N's grace and lapse days inside
   it), in the same pass as step 1; a change into lapsed inside the range is a *lapse*, out of
   it a *reactivation*. The days a participant enters the next age band are segment starts too,
   so the demographic rows know that day's status.
3. *Counts per day.* Each change is -1 on the old status and +1 on the new one, per dimension
   group; a running sum over days gives every day's stocks; the day's flows and money are
   summed per day and run into year-to-date sums (chained from the stored rows of P when P is
   in the same year).
4. *Money.* Payment entries by their payment's local day, reversals and adjustments by their
   creation day, split per programme once per distinct (income, JHT, sector, first month,
   months) with the schedule and discounts in force (the rounding of `quote_contribution`).

Everything is set-based SQL, a group of provinces at a time, the groups in one transaction or
in several sessions at once (`_build_parallel`); either way the range's old rows are replaced in
one transaction, so readers see the old range or the new one. The build records in
`RollupDay` the ledger and participant id marks it read up to; `refresh_day` then updates the
day's rows from the entries and participants added since (a delta, see there).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from dataclasses import astuple, dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from contributions import coverage as rules
from contributions.rates import add_months

from .cache import BUMP_SQL
from .rollups import (
    AGE_BANDS,
    DIMS,
    FLOWS,
    day_bounds,
    day_params,
    derive_province_rollup,
    state_sql,
)

logger = logging.getLogger(__name__)
LOCK_KEY = 5_050_505  # pg advisory lock: one rollup build or refresh at a time


def calendar_params(first: date, last: date) -> list[tuple[date, date, date]]:
    """(N, grace_from, lapsed_from) for every next-unpaid month N whose status changes between
    `first` and `last`: the first day on which a participant with first unpaid month N is no
    longer active (month_start(D) >= N) and the first day on which they are lapsed
    (lapse_threshold(D) >= N). Months below the table are lapsed over the whole range, months
    above it active (`first` / the day after `last` in the SQL)."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    low = add_months(rules.lapse_threshold(first), -1)
    high = add_months(rules.month_start(last), 1)
    out = []
    month = low
    end = last + timedelta(days=1)
    while month <= high:
        grace_from = next((d for d in days if rules.month_start(d) >= month), end)
        lapsed_from = next((d for d in days if rules.lapse_threshold(d) >= month), end)
        out.append((month, grace_from, lapsed_from))
        month = add_months(month, 1)
    return out


# --- step 1 and 2: per-participant status changes ---------------------------------------------
# The build's current group of provinces: codes in [plo, phi), phi NULL for the last group
# (rollup_events.province_chunks).
_IN_GROUP = "{col} >= %(plo)s AND (%(phi)s::text IS NULL OR {col} < %(phi)s)"

_PARTICIPANTS = """
CREATE TEMP TABLE rb_pa ON COMMIT DROP AS
SELECT pa.id AS pid, (pa.created_at AT TIME ZONE %(tz)s)::date AS reg_day,
       dense_rank() OVER (ORDER BY pa.province_id, pa.regency_id, pa.occupation_id, pa.channel,
                                   pa.partner_id) AS gid,
       dense_rank() OVER (ORDER BY pa.province_id, pa.occupation_id, pa.partner_id, pa.sex)
           AS dgid,
       COALESCE(c.start_month, date_trunc('month', pa.created_at AT TIME ZONE %(tz)s)::date) AS sm,
       pa.province_id, pa.regency_id, pa.occupation_id, pa.channel, pa.partner_id, pa.sex,
       pa.registered_by_id, pa.declared_income, pa.jht, b.b25, b.b35, b.b45, b.b55
FROM enrollment_participant pa
LEFT JOIN contributions_coverage c ON c.participant_id = pa.id
CROSS JOIN LATERAL (
    SELECT CASE WHEN date_part('year', age(x.d25, pa.birth_date)) >= 25 THEN x.d25
                ELSE x.d25 + 1 END AS b25,
           CASE WHEN date_part('year', age(x.d35, pa.birth_date)) >= 35 THEN x.d35
                ELSE x.d35 + 1 END AS b35,
           CASE WHEN date_part('year', age(x.d45, pa.birth_date)) >= 45 THEN x.d45
                ELSE x.d45 + 1 END AS b45,
           CASE WHEN date_part('year', age(x.d55, pa.birth_date)) >= 55 THEN x.d55
                ELSE x.d55 + 1 END AS b55
    FROM (SELECT (pa.birth_date + interval '25 years')::date AS d25,
                 (pa.birth_date + interval '35 years')::date AS d35,
                 (pa.birth_date + interval '45 years')::date AS d45,
                 (pa.birth_date + interval '55 years')::date AS d55) x
) b
WHERE pa.created_at < %(end)s AND pa.id <= %(pmark)s
  AND {in_group}
""".replace("{in_group}", _IN_GROUP.format(col="pa.province_id"))

# Payment entries with their payment's local day, next unpaid month if they are the latest,
# and their reversal's local day (only reversals the range can see); with the columns the
# money of the range needs, so the group's payments are read once (rb_money takes the range's
# rows from here). Both tables are cut to the group before the join (a payment and its entry
# are of the same participant; `_members`): otherwise every group hashes all the payments of
# the year.
_ENTRIES = """
CREATE TEMP TABLE rb_entry ON COMMIT DROP AS
SELECT e.participant_id AS pid, (p.paid_at AT TIME ZONE %(tz)s)::date AS d,
       (e.period_start + make_interval(months => e.months))::date AS nu,
       rv.rev_at, e.amount, p.collected_by_id, e.period_start, e.months
FROM contributions_ledgerentry e
JOIN contributions_payment p ON p.id = e.payment_id
LEFT JOIN (SELECT reverses_id, min(created_at) AS rev_at FROM contributions_ledgerentry
           WHERE kind = 'reversal' AND id <= %(mark)s AND created_at < %(end)s
           GROUP BY reverses_id) rv ON rv.reverses_id = e.id
WHERE e.kind = 'payment' AND e.id <= %(mark)s AND p.paid_at < %(end)s
  AND CASE WHEN e.participant_id <= %(pmark)s THEN get_bit(%(members)s, e.participant_id) = 1 END
  AND CASE WHEN p.participant_id <= %(pmark)s THEN get_bit(%(members)s, p.participant_id) = 1 END
"""


def _members(cursor: _Timed, pmark: int) -> bytes:
    """The group's participants (rb_pa) as a bitmap over participant ids 0..pmark, bit `id` of
    byte id // 8 (PostgreSQL's get_bit order): the join above tests each of the year's
    payments and ledger entries against it, a bit test instead of a hash probe (at 10 M
    participants, 156 M probes of a 1.5 M-entry hash table per group took ~50 s)."""
    bits = bytearray(pmark // 8 + 1)
    cursor.execute("SELECT pid FROM rb_pa")
    for (pid,) in cursor.fetchall():
        bits[pid >> 3] |= 1 << (pid & 7)
    return bytes(bits)


_REVERSED = """
CREATE TEMP TABLE rb_revpid ON COMMIT DROP AS
SELECT DISTINCT pid FROM rb_entry WHERE rev_at IS NOT NULL
"""

_CALENDAR = """
CREATE TEMP TABLE rb_nu (nu date PRIMARY KEY, grace_from date, lapsed_from date) ON COMMIT DROP
"""


def _status(day: str, grace_from: str, lapsed_from: str) -> str:
    """The status on `day` of a participant whose next unpaid month has these calendar days,
    as a code: 1 active, 2 grace, 3 lapsed (contributions.coverage.status_for)."""
    return f"CASE WHEN {day} < {grace_from} THEN 1 WHEN {day} < {lapsed_from} THEN 2 ELSE 3 END"


def _status_deltas(sign: str = "") -> str:
    """d_active, d_grace, d_lapsed of a change row: +1 on its new status (s_to), -1 on its old
    one (s_from, NULL for a participant's initial status); with `sign` ("x.sign * "), the old
    status moved by that sign (an age-band birthday)."""
    names = {1: "d_active", 2: "d_grace", 3: "d_lapsed"}
    if sign:
        return ", ".join(f"{sign}(s_from = {code})::int AS {name}" for code, name in names.items())
    return ", ".join(
        f"(s_to = {code})::int - COALESCE((s_from = {code})::int, 0) AS {name}"
        for code, name in names.items()
    )


def _band(day: str) -> str:
    """The age band on `day` as its index in rollups.AGE_BANDS (rb_pa's bXX = the first day
    in the band XX-..)."""
    return (
        f"CASE WHEN {day} < b25 THEN 0 WHEN {day} < b35 THEN 1 WHEN {day} < b45 THEN 2"
        f" WHEN {day} < b55 THEN 3 ELSE 4 END"
    )


def _calendar_day(column: str, month: str) -> str:
    """grace_from / lapsed_from of a next unpaid month, also outside the calendar table: a
    month above it is active over the whole range, one below it lapsed."""
    return (
        f"COALESCE({column}, CASE WHEN {month} > %(month_e)s THEN %(e1)s::date"
        f" ELSE %(p)s::date END)"
    )


# The status changes of every participant of the group, one row each, straight from the
# payment entries (steps 1 and 2 in one pass): the days on which the next unpaid month N may
# change (payment days; for the few participants with a reversal, reversal days too, with the
# exact max over live entries), plus the days a participant enters the next age band (where
# the demographic rows need the status of that day), as *segments* [a, b) with one N each, in
# one sort by (participant, day). A segment changes the status at its first day if the status
# of the day before (under the previous segment's N) differs, and inside it on N's grace and
# lapse days. The first segment of a participant (from max(registration day, P)) is their
# initial status (s_from NULL). A payment that changes nothing (made before N's grace day)
# gives no row. Each row carries the participant's dimension groups, agent and age band, so
# that the events need no join back to the participants.
_CHANGES = (
    """
CREATE TEMP TABLE rb_chg ON COMMIT DROP AS
WITH xdays AS (
    SELECT pid, x.d FROM rb_pa
    CROSS JOIN LATERAL (VALUES (b25), (b35), (b45), (b55)) x(d)
    WHERE x.d > GREATEST(reg_day, %(p)s::date) AND x.d <= %(e)s
), prow AS (
    SELECT pid, d, max(max(nu)) OVER (PARTITION BY pid ORDER BY d) AS nu, bool_or(x) AS x
    FROM (
        SELECT pid, d, nu, false AS x FROM rb_entry WHERE pid NOT IN (SELECT pid FROM rb_revpid)
        UNION ALL
        SELECT pid, '-infinity'::date, NULL, false FROM rb_pa
        WHERE pid NOT IN (SELECT pid FROM rb_revpid)
        UNION ALL
        SELECT pid, d, NULL, true FROM xdays WHERE pid NOT IN (SELECT pid FROM rb_revpid)
    ) u
    GROUP BY pid, d
), plain AS (
    SELECT pid, d, nu, x, lag(nu) OVER w AS prev_nu, lead(d) OVER w AS next_d
    FROM prow WINDOW w AS (PARTITION BY pid ORDER BY d)
), rentry AS (
    SELECT pid, d, nu, (rev_at AT TIME ZONE %(tz)s)::date AS rev_day
    FROM rb_entry WHERE pid IN (SELECT pid FROM rb_revpid)
), rdays AS (
    SELECT pid, d, bool_or(x) AS x
    FROM (
        SELECT pid, d, false AS x FROM rentry
        UNION ALL
        SELECT pid, rev_day, false FROM rentry WHERE rev_day IS NOT NULL
        UNION ALL
        SELECT pid, '-infinity'::date, false FROM rb_revpid
        UNION ALL
        SELECT pid, d, true FROM xdays WHERE pid IN (SELECT pid FROM rb_revpid)
    ) u
    GROUP BY pid, d
), rrow AS (
    SELECT c.pid, c.d, max(e.nu) AS nu, c.x
    FROM rdays c
    LEFT JOIN rentry e ON e.pid = c.pid AND e.d <= c.d AND (e.rev_day IS NULL OR e.rev_day > c.d)
    GROUP BY c.pid, c.d, c.x
), reversed AS (
    SELECT pid, d, nu, x, lag(nu) OVER w AS prev_nu, lead(d) OVER w AS next_d
    FROM rrow WINDOW w AS (PARTITION BY pid ORDER BY d)
)
SELECT y.gid, y.dgid, y.agent, v.day, v.s_from, v.s_to, v.x, {band}::smallint AS band,
       CASE WHEN v.x THEN {band_before} END::smallint AS x_band
FROM (
    -- (OFFSET 0 keeps each derived table a step of its own: the calendar days and statuses
    -- are computed once per segment, not once per use.)
    SELECT *, CASE WHEN a > f THEN {status_before} END AS s_before, {status_a} AS s_a,
           {status_g} AS s_g
    FROM (
        SELECT pa.gid::int AS gid, pa.dgid::int AS dgid, pa.registered_by_id AS agent, pa.b25,
               pa.b35, pa.b45, pa.b55, s.x, k.a, k.b, k.f, {g} AS g, {l} AS l, {pg} AS pg,
               {pl} AS pl
        FROM (SELECT * FROM plain UNION ALL SELECT * FROM reversed) s
        JOIN rb_pa pa ON pa.pid = s.pid
        CROSS JOIN LATERAL (
            SELECT COALESCE(s.nu, pa.sm) AS n, COALESCE(s.prev_nu, pa.sm) AS np,
                   GREATEST(pa.reg_day, %(p)s::date) AS f,
                   GREATEST(s.d, pa.reg_day, %(p)s::date) AS a,
                   LEAST(COALESCE(s.next_d, %(e1)s::date), %(e1)s::date) AS b
        ) k
        LEFT JOIN rb_nu n ON n.nu = k.n
        LEFT JOIN rb_nu np ON np.nu = k.np
        WHERE k.a < k.b
        OFFSET 0
    ) t
    OFFSET 0
) y
CROSS JOIN LATERAL (VALUES
    (0, y.a, y.s_before, y.s_a, y.x),
    (1, y.g, 1, y.s_g, false),
    (2, y.l, 2, 3, false)
) v(kind, day, s_from, s_to, x)
WHERE (y.s_before IS DISTINCT FROM y.s_a OR y.x OR (y.a < y.g AND y.g < y.b)
       OR (y.a < y.l AND y.l < y.b))
  AND CASE v.kind WHEN 0 THEN v.s_from IS DISTINCT FROM v.s_to OR v.x
                  WHEN 1 THEN y.a < y.g AND y.g < y.b
                  ELSE y.a < y.l AND y.l < y.b AND y.g < y.l END
""".replace("{band}", _band("v.day"))
    .replace("{band_before}", _band("(v.day - 1)"))
    .replace("{g}", _calendar_day("n.grace_from", "k.n"))
    .replace("{l}", _calendar_day("n.lapsed_from", "k.n"))
    .replace("{pg}", _calendar_day("np.grace_from", "k.np"))
    .replace("{pl}", _calendar_day("np.lapsed_from", "k.np"))
    .replace("{status_before}", _status("(a - 1)", "pg", "pl"))
    .replace("{status_a}", _status("a", "g", "l"))
    .replace("{status_g}", _status("g", "g", "l"))
)

# --- step 4: the money of the range, one row per ledger movement --------------------------------
_MONEY_TEMPLATE = """
CREATE TEMP TABLE rb_money ON COMMIT DROP AS
WITH moves AS (
    {payments}
    UNION ALL
    SELECT (r.created_at AT TIME ZONE %(tz)s)::date, r.participant_id, -1, r.amount,
           p.collected_by_id, -1, e.period_start, e.months
    FROM contributions_ledgerentry r
    JOIN contributions_ledgerentry e ON e.id = r.reverses_id
    LEFT JOIN contributions_payment p ON p.id = e.payment_id
    WHERE r.kind = 'reversal' AND r.created_at >= %(start_ts)s AND r.created_at < %(end)s
      AND r.id <= %(mark)s AND r.id > %(low)s{scope_r}
    UNION ALL
    SELECT (created_at AT TIME ZONE %(tz)s)::date, participant_id, 0, amount, NULL, 0, NULL,
           NULL
    FROM contributions_ledgerentry
    WHERE kind IN ('adjustment', 'due') AND created_at >= %(start_ts)s AND created_at < %(end)s
      AND id <= %(mark)s AND id > %(low)s{scope}
)
SELECT m.day, m.participant_id AS pid, m.collected_by_id, m.payments, m.amount, m.sign,
       m.period_start, m.months, pp.declared_income, pp.jht, o.sector{group}
FROM moves m
LEFT JOIN {participants} pp ON pp.{pid} = m.participant_id{only_paid}
LEFT JOIN enrollment_occupation o ON o.code = pp.occupation_id
"""

_MONEY_PAYMENTS = """SELECT (p.paid_at AT TIME ZONE %(tz)s)::date AS day, e.participant_id,
           1 AS sign, e.amount, p.collected_by_id, 1 AS payments, e.period_start, e.months
    FROM contributions_payment p
    JOIN contributions_ledgerentry e ON e.payment_id = p.id AND e.kind = 'payment'
    WHERE p.paid_at >= %(start_ts)s AND p.paid_at < %(end)s AND e.id <= %(mark)s
      AND e.id > %(low)s"""

# A group's payments of the range: from rb_entry (same entries: kind payment, id up to the mark,
# paid before the end, participant in the group; the local day from the range's first day).
# No lower id bound: only the build uses it, and it reads from the first entry (`low` = 0); the
# refresh, which reads above an old mark, uses _MONEY_PAYMENTS.
_CHUNK_MONEY_PAYMENTS = """SELECT d AS day, pid AS participant_id, 1 AS sign, amount,
           collected_by_id, 1 AS payments, period_start, months
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
        participants="rb_pa" if chunk else "enrollment_participant",
        pid="pid" if chunk else "id",
        scope_r=only.format("r.participant_id"),
        scope=only.format("participant_id"),
        group=", pp.gid, pp.reg_day" if chunk else "",
        only_paid="" if chunk else " AND m.period_start IS NOT NULL",
    )


MONEY_SQL = money_sql(chunk=False)
# (The split of a payment entry, or of the entry a reversal cancels, uses that entry's months
# and its participant's income, JHT choice and sector: a reversal is always of the same
# participant's payment, contributions.services.reverse_payment.)

# The programme split of one (income, JHT, sector, first month, months): computed once per
# distinct key, the same SQL as the per-day build.
SPLIT_SQL = """
CREATE TEMP TABLE {table} ON COMMIT DROP AS
SELECT k.period_start, k.months, k.declared_income, k.jht, k.sector, sp.jkk, sp.jkm, sp.jht_amt
FROM (SELECT DISTINCT period_start, months, declared_income, jht, sector
      FROM {source} WHERE period_start IS NOT NULL) k
CROSS JOIN LATERAL (
    SELECT sum(CASE WHEN d.jkk_pct IS NULL THEN b.jkk
                    ELSE (2 * b.jkk * (100 - d.jkk_pct) + 100) / 200 END) AS jkk,
           sum(CASE WHEN d.jkm_pct IS NULL THEN b.jkm
                    ELSE (2 * b.jkm * (100 - d.jkm_pct) + 100) / 200 END) AS jkm,
           sum(CASE WHEN d.jht_pct IS NULL THEN b.jht
                    ELSE (2 * b.jht * (100 - d.jht_pct) + 100) / 200 END) AS jht_amt
    FROM generate_series(0, k.months - 1) g(i)
    CROSS JOIN LATERAL (SELECT (k.period_start + make_interval(months => g.i))::date AS month) mm
    CROSS JOIN LATERAL (
        SELECT s.jkk_rate_bp, s.jkm_monthly, s.jht_rate_bp FROM contributions_rateschedule s
        WHERE s.effective_from <= mm.month ORDER BY s.effective_from DESC LIMIT 1
    ) s
    CROSS JOIN LATERAL (
        SELECT (2 * k.declared_income * s.jkk_rate_bp + 10000) / 20000 AS jkk,
               s.jkm_monthly::bigint AS jkm,
               CASE WHEN k.jht THEN (2 * k.declared_income * s.jht_rate_bp + 10000) / 20000
                    ELSE 0 END AS jht
    ) b
    CROSS JOIN LATERAL (
        SELECT max(x.percent) FILTER (WHERE 'JKK' = ANY(x.progs)) AS jkk_pct,
               max(x.percent) FILTER (WHERE 'JKM' = ANY(x.progs)) AS jkm_pct,
               max(x.percent) FILTER (WHERE 'JHT' = ANY(x.progs)) AS jht_pct
        FROM (SELECT rd.percent,
                     string_to_array(replace(rd.programmes, ' ', ''), ',') AS progs
              FROM contributions_ratediscount rd
              WHERE rd.first_month <= mm.month AND rd.last_month >= mm.month
                AND rd.sector IN ('', k.sector)) x
    ) d
) sp
"""

# Money rows with their split (reversals carry the split of the payment they cancel, negated).
MONEY_SPLIT_VIEW = """
SELECT m.day, m.pid, m.collected_by_id, m.payments, m.amount,{group}
       m.sign * COALESCE(s.jkk, 0) AS jkk, m.sign * COALESCE(s.jkm, 0) AS jkm,
       m.sign * COALESCE(s.jht_amt, 0) AS jht,
       m.amount - m.sign * COALESCE(s.jkk + s.jkm + s.jht_amt, 0) AS other
FROM {money} m
LEFT JOIN {split} s ON s.period_start = m.period_start AND s.months = m.months
     AND s.declared_income = m.declared_income AND s.jht = m.jht AND s.sector = m.sector
"""


# --- step 3: events per group and day, then the rows --------------------------------------------
def _events_view(start: date) -> str:
    """rb_pev: the status and registration events of each participant (gid, agent, day and
    the day's changes), a temporary *view* over rb_chg and rb_pa, read twice: by the group
    events and the agent events. The date is inlined as a literal (a view cannot take bind
    parameters); it is a `date` object, never user input."""
    s = f"'{start.isoformat()}'::date"
    return f"""
CREATE TEMP VIEW rb_pev AS
SELECT gid, agent, day, {_status_deltas()}, 0 AS new_registrations,
       (s_from = 3 AND s_to <> 3 AND day >= {s})::int AS reactivations,
       (s_to = 3 AND s_from IS DISTINCT FROM 3 AND day >= {s})::int AS lapses
FROM rb_chg WHERE s_from IS DISTINCT FROM s_to
UNION ALL
SELECT gid, registered_by_id, reg_day, 0, 0, 0, 1, 0, 0 FROM rb_pa WHERE reg_day >= {s}
"""  # noqa: S608


# (rb_pev holds the status and registration events only: the money rows go into the group
# events straight from rb_money_split, a view too, so no per-payment copy of the year's ledger
# is written to temp files twice more.)


# The events are grouped by (gid, day) first - gid numbers the participant's dimension group
# in rb_pa (dense_rank) - and the dimensions joined back on the grouped rows: a hash aggregate
# over narrow rows instead of a sort of ~20 M wide rows per 500,000 participants on five text
# keys (measured at 10 M participants: docs/benchmarks.md). The status events and the money rows
# are grouped apart (each aggregate keeps small states, so it stays in memory) and joined. The
# demographic events use dgid the same way.
def _daily_events_sql() -> str:
    dims = ", ".join(DIMS)
    g_dims = ", ".join(f"g.{d}" for d in DIMS)
    zeros = ", ".join("0" for _f in FLOWS)
    ytd = ", ".join(f"ytd_{f}" for f in FLOWS)
    status_flows = ("new_registrations", "reactivations", "lapses")
    money = {
        "payments": "payments",
        "collected_jkk": "jkk",
        "collected_jkm": "jkm",
        "collected_jht": "jht",
        "collected_other": "other",
        "collected_total": "amount",
    }
    assert set(FLOWS) == {*status_flows, *money}
    st_sums = ", ".join(f"sum({f}) AS {f}" for f in status_flows)
    mo_sums = ", ".join(f"sum({money[f]}) AS {f}" for f in FLOWS if f in money)
    x_flows = ", ".join(f"COALESCE({'st' if f in status_flows else 'mo'}.{f}, 0)" for f in FLOWS)
    c_zeros = ", ".join(f"0::bigint AS c_{f}" for f in FLOWS)
    sums = ", ".join(f"sum({f}) AS {f}" for f in FLOWS)
    carries = ", ".join(f"sum(c_{f}) AS c_{f}" for f in FLOWS)
    return f"""
CREATE TEMP TABLE rb_ev ON COMMIT DROP AS
SELECT {dims}, day, sum(d_active) AS d_active, sum(d_grace) AS d_grace,
       sum(d_lapsed) AS d_lapsed, {sums}, {carries}, sum(carried) AS carried
FROM (
    SELECT {g_dims}, COALESCE(st.day, mo.day), COALESCE(st.d_active, 0),
           COALESCE(st.d_grace, 0), COALESCE(st.d_lapsed, 0), {x_flows}, {c_zeros}, 0
    FROM (
        SELECT gid, day, sum(d_active) AS d_active, sum(d_grace) AS d_grace,
               sum(d_lapsed) AS d_lapsed, {st_sums}
        FROM rb_pev GROUP BY gid, day
    ) st
    FULL JOIN (
        SELECT gid, day, {mo_sums}
        FROM rb_money_split WHERE reg_day <= day GROUP BY gid, day
    ) mo ON mo.gid = st.gid AND mo.day = st.day
    JOIN (SELECT DISTINCT gid, {dims} FROM rb_pa) g ON g.gid = COALESCE(st.gid, mo.gid)
    UNION ALL
    SELECT {dims}, %(start)s::date, 0, 0, 0, {zeros}, {ytd}, 1
    FROM reporting_dailyrollup
    WHERE day = %(p)s AND %(chain)s
      AND {_IN_GROUP.format(col="province_id")}
) u({dims}, day, d_active, d_grace, d_lapsed, {", ".join(FLOWS)},
    {", ".join(f"c_{f}" for f in FLOWS)}, carried)
GROUP BY {dims}, day
"""  # noqa: S608


def _runs_sql(
    table: str,
    keys: tuple[str, ...],
    stocks: dict[str, str],
    flows: tuple[str, ...],
    ytd: dict[str, str],
) -> str:
    """The rows of every day from sparse events: running sums over the days that have events
    only (`stocks`: running over all days, `ytd`: running within the year, both name -> SQL of
    the day's delta), then each event day's values repeated until the day before the group's
    next event (flows only on the event day itself). A zero event on every 1 January inside the
    range restarts the year-to-date sums. The window sorts the events once, by group, year, day;
    the days between events are generated, never sorted."""
    k = ", ".join(keys)
    cols = sorted({c for expr in (*stocks.values(), *ytd.values()) for c in _columns(expr)})
    cols = [c for c in cols if c not in flows] + list(flows)
    zeros = ", ".join("0" for _c in cols)
    run_stocks = ", ".join(
        f"sum({expr}) OVER (PARTITION BY {k} ORDER BY yr, day) AS {name}"
        for name, expr in stocks.items()
    )
    run_ytd = ", ".join(
        f"sum({expr}) OVER (PARTITION BY {k}, yr ORDER BY day) AS {name}"
        for name, expr in ytd.items()
    )
    out_flows = [f"CASE WHEN d.day = x.day THEN x.{f} ELSE 0 END AS {f}" for f in flows]
    outer = ", ".join([*(f"x.{c}" for c in keys), *(f"x.{n}" for n in (*stocks, *ytd)), *out_flows])
    inner = ", ".join([*flows, run_stocks, *([run_ytd] if ytd else [])])
    return f"""
    SELECT d.day::date AS day, {outer}
    FROM (
        SELECT {k}, day, {inner},
               lead(day) OVER (PARTITION BY {k} ORDER BY yr, day) AS next_day
        FROM (
            SELECT {k}, day, date_part('year', day) AS yr, {", ".join(cols)} FROM {table}
            UNION ALL
            SELECT DISTINCT {k}, j.day, date_part('year', j.day), {zeros}
            FROM {table}
            CROSS JOIN (SELECT make_date(y::int, 1, 1) AS day
                        FROM generate_series(%(year_from)s::int, %(year_to)s::int) y) j
            WHERE {table}.day < j.day
        ) ev
    ) x
    CROSS JOIN LATERAL generate_series(
        GREATEST(x.day, %(start)s::date), COALESCE(x.next_day - 1, %(e)s::date), interval '1 day'
    ) d(day)
"""  # noqa: S608


def _columns(expr: str) -> list[str]:
    return [w for w in expr.replace("+", " ").split() if w.isidentifier()]


def _daily_insert_sql(target: str = "reporting_dailyrollup") -> str:
    dims = ", ".join(DIMS)
    flows = ", ".join(FLOWS)
    ytd = ", ".join(f"ytd_{f}" for f in FLOWS)
    runs = _runs_sql(
        "rb_ev",
        DIMS,
        {"active": "d_active", "grace": "d_grace", "lapsed": "d_lapsed"},
        FLOWS,
        {**{f"ytd_{f}": f"{f} + c_{f}" for f in FLOWS}, "seen": "carried"},
    )
    return f"""
INSERT INTO {target} (day, {dims}, registered, active, grace, lapsed, {flows}, {ytd})
SELECT day, {dims}, active + grace + lapsed, active, grace, lapsed, {flows}, {ytd}
FROM ({runs}) r
WHERE active + grace + lapsed > 0 OR seen > 0
"""  # noqa: S608


# Demographic stocks: the status changes in the age band of their day, and on a birthday that
# starts the next band, the status of the day before moved from the old band to the new one.
_DEMOGRAPHIC_EVENTS = (
    """
CREATE TEMP TABLE rb_dev ON COMMIT DROP AS
SELECT g.province_id, g.occupation_id, g.partner_id, g.sex,
       (ARRAY[{bands}])[z.age_band + 1] AS age_band, z.day, z.d_active, z.d_grace, z.d_lapsed
FROM (
SELECT dgid, age_band, day,
       sum(d_active) AS d_active, sum(d_grace) AS d_grace, sum(d_lapsed) AS d_lapsed
FROM (
    SELECT dgid, band AS age_band, day, {deltas}
    FROM rb_chg WHERE s_from IS DISTINCT FROM s_to
    UNION ALL
    SELECT dgid, x.band, day, {moved}
    FROM rb_chg CROSS JOIN LATERAL (VALUES (x_band, -1), (band, 1)) x(band, sign)
    WHERE rb_chg.x
) y(dgid, age_band, day, d_active, d_grace, d_lapsed)
GROUP BY dgid, age_band, day
) z
JOIN (SELECT DISTINCT dgid, province_id, occupation_id, partner_id, sex FROM rb_pa) g
  ON g.dgid = z.dgid
""".replace("{bands}", ", ".join(f"'{band}'" for band in AGE_BANDS))
    .replace("{deltas}", _status_deltas())
    .replace("{moved}", _status_deltas("x.sign * "))
)

DEMO_KEYS = ("province_id", "occupation_id", "partner_id", "sex", "age_band")


def _demographic_insert_sql(target: str = "reporting_demographicrollup") -> str:
    keys = ", ".join(DEMO_KEYS)
    runs = _runs_sql(
        "rb_dev",
        DEMO_KEYS,
        {"active": "d_active", "grace": "d_grace", "lapsed": "d_lapsed"},
        (),
        {},
    )
    return f"""
INSERT INTO {target} (day, {keys}, registered, active, grace, lapsed)
SELECT day, {keys}, active + grace + lapsed, active, grace, lapsed
FROM ({runs}) r
WHERE active + grace + lapsed > 0
"""  # noqa: S608


# Agents: registrations and stocks by registered_by, collections by collected_by.
# An agent's participants and collections span provinces: each group of provinces adds its
# events to an accumulator (rb_aev_all, or the staging table of a parallel build), grouped once
# at the end with the chained year-to-date sums.
_AGENT_EVENT_COLUMNS = """(agent_id bigint, day date, d_registered bigint, d_active bigint,
                              new_registrations bigint, collected numeric, seen bigint)"""
_AGENT_ACCUMULATOR = f"CREATE TEMP TABLE rb_aev_all {_AGENT_EVENT_COLUMNS} ON COMMIT DROP"

_AGENT_CHUNK_EVENTS = """
INSERT INTO {target}
SELECT agent_id, day, sum(d_registered), sum(d_active), sum(new_registrations), sum(collected),
       sum(seen)
FROM (
    SELECT agent AS agent_id, day, d_active + d_grace + d_lapsed AS d_registered, d_active,
           new_registrations, 0::bigint AS collected, 0 AS seen
    FROM rb_pev WHERE agent IS NOT NULL
    UNION ALL
    SELECT collected_by_id, day, 0, 0, 0, amount, 1
    FROM rb_money WHERE collected_by_id IS NOT NULL
) u
GROUP BY agent_id, day
"""

_AGENT_EVENTS = """
CREATE TEMP TABLE rb_aev ON COMMIT DROP AS
SELECT agent_id, day, sum(d_registered) AS d_registered, sum(d_active) AS d_active,
       sum(new_registrations) AS new_registrations, sum(collected) AS collected,
       sum(c_new) AS c_new, sum(c_collected) AS c_collected, sum(seen) AS seen
FROM (
    SELECT agent_id, day, d_registered, d_active, new_registrations, collected,
           0::bigint AS c_new, 0::bigint AS c_collected, seen
    FROM {source}
    UNION ALL
    SELECT agent_id, %(start)s::date, 0, 0, 0, 0, ytd_new_registrations, ytd_collected_total, 1
    FROM reporting_agentrollup WHERE day = %(p)s AND %(chain)s
) u
GROUP BY agent_id, day
"""


def _agent_insert_sql() -> str:
    runs = _runs_sql(
        "rb_aev",
        ("agent_id",),
        {"registered": "d_registered", "active": "d_active"},
        ("new_registrations", "collected"),
        {
            "ytd_new": "new_registrations + c_new",
            "ytd_collected": "collected + c_collected",
            "seen": "seen",
        },
    )
    return f"""
INSERT INTO reporting_agentrollup (day, agent_id, branch_id, province_id, registered, active,
                                   new_registrations, collected_total, ytd_new_registrations,
                                   ytd_collected_total)
SELECT x.day, x.agent_id, sp.branch_id, COALESCE(b.province_id, ''), x.registered, x.active,
       x.new_registrations, x.collected, x.ytd_new, x.ytd_collected
FROM ({runs}) x
JOIN enrollment_staffprofile sp ON sp.id = x.agent_id
LEFT JOIN enrollment_branch b ON b.id = sp.branch_id
WHERE x.registered > 0 OR x.seen > 0
"""  # noqa: S608


def marks() -> tuple[int, int]:
    """The ledger and participant id marks a build reads up to."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE((SELECT max(id) FROM contributions_ledgerentry), 0),"
            " COALESCE((SELECT max(id) FROM enrollment_participant), 0)"
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


class _Timed:
    """A cursor that keeps the time of each statement, for the build's log line."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.steps: list[tuple[str, float]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        started = time.monotonic()
        self.cursor.execute(sql, params)
        words = sql.split()
        name = words[3] if words[:3] == ["CREATE", "TEMP", "TABLE"] else " ".join(words[:3])
        self.steps.append((name, time.monotonic() - started))

    def execute_bound(self, sql: str, params: dict[str, Any]) -> None:
        """execute() with server-side binding: the parameters travel apart from the SQL text,
        each once (Django's psycopg cursors inline them into the text, which for the group's
        participant bitmap would be megabytes of SQL, in every statement log too)."""
        started = time.monotonic()
        with psycopg.Cursor(self.cursor.db.connection) as bound:
            bound.execute(sql, params)
        words = sql.split()
        self.steps.append((words[3], time.monotonic() - started))

    def executemany(self, sql: str, rows: Any) -> None:
        self.cursor.executemany(sql, rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self.cursor.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self.cursor.rowcount)

    def report(self) -> str:
        """Seconds per step, summed over the province groups, in the order first run."""
        total: dict[str, float] = {}
        for name, seconds in self.steps:
            total[name] = total.get(name, 0.0) + seconds
        return ", ".join(f"{n} {s:.1f}s" for n, s in total.items() if s >= 0.05)


def province_chunks(end: datetime, pmark: int, size: int) -> list[tuple[str, str | None]]:
    """Split the provinces (in code order) into groups of about `size` participants, as code
    ranges [low, high) - the last one open - so that together they cover every province code,
    including one without participants (a chained row of the day before, say). A province is
    never split: every rollup key holds it, so the groups' rows are disjoint."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT province_id, count(*) FROM enrollment_participant"
            " WHERE created_at < %s AND id <= %s GROUP BY province_id ORDER BY province_id",
            [end, pmark],
        )
        counts = cursor.fetchall()
    bounds = [""]
    held = 0
    for province, count in counts:
        if held and held + count > size:
            bounds.append(province)
            held = 0
        held += count
    return [(low, bounds[i + 1] if i + 1 < len(bounds) else None) for i, low in enumerate(bounds)]


_CHUNK_TABLES = ("rb_pa", "rb_entry", "rb_revpid", "rb_chg", "rb_money", "rb_split", "rb_ev",
                 "rb_dev")  # fmt: skip


@dataclass(frozen=True)
class _Targets:
    """Where a group's rows go: the rollup tables themselves (a build in one session), or the
    staging tables that a parallel build's workers fill and its last transaction copies."""

    daily: str
    demographic: str
    agent_events: str


_DIRECT = _Targets("reporting_dailyrollup", "reporting_demographicrollup", "rb_aev_all")
_STAGED = _Targets("rb_stage_daily", "rb_stage_demographic", "rb_stage_agent_events")


def _build_chunk(cursor: _Timed, params: dict[str, Any], targets: _Targets) -> int:
    """The daily and demographic rows of one group of provinces (every day of the range), and
    its agent events into the accumulator; the group's temp tables are emptied and dropped at
    the end, so the next group reuses the space. Returns the DailyRollup rows written."""
    cursor.execute(_PARTICIPANTS, params)
    cursor.execute("ANALYZE rb_pa")
    cursor.execute_bound(_ENTRIES, {**params, "members": _members(cursor, params["pmark"])})
    cursor.execute("ANALYZE rb_entry")
    cursor.execute(_REVERSED, params)
    # Planner settings for two statements whose row counts it cannot know (measured at 10 M:
    # docs/benchmarks.md): the change rows group the entries by (participant, day) in the sort
    # their window needs anyway, rather than in a hash table that spills and then that sort;
    # the group events join the money rows to their split by a hash of the few split rows,
    # rather than by sorting the group's money rows.
    _execute_planned(cursor, _CHANGES, params, enable_hashagg="off")
    cursor.execute(money_sql(chunk=True), params)
    # A table created in this transaction is truncated in place: its disk space comes back now,
    # not at commit (at 10 M participants each of these is gigabytes of temp files).
    cursor.execute("TRUNCATE rb_entry")
    cursor.execute("ANALYZE rb_money")  # its row count: the split is a hash join, not a sort
    cursor.execute(SPLIT_SQL.format(table="rb_split", source="rb_money"))
    cursor.execute("ANALYZE rb_split")
    cursor.execute(
        "CREATE TEMP VIEW rb_money_split AS "
        + MONEY_SPLIT_VIEW.format(money="rb_money", split="rb_split", group=" m.gid, m.reg_day,")
    )
    cursor.execute(_events_view(params["start"]))
    _execute_planned(cursor, _daily_events_sql(), params, enable_mergejoin="off")
    cursor.execute(_AGENT_CHUNK_EVENTS.format(target=targets.agent_events), params)
    cursor.execute("TRUNCATE rb_money")  # grouped now: give the space back
    cursor.execute(_daily_insert_sql(targets.daily), params)
    rows = cursor.rowcount
    cursor.execute(_DEMOGRAPHIC_EVENTS, params)
    cursor.execute(_demographic_insert_sql(targets.demographic), params)
    cursor.execute("DROP VIEW rb_money_split, rb_pev")
    tables = ", ".join(_CHUNK_TABLES)
    cursor.execute(f"TRUNCATE {tables}")
    cursor.execute(f"DROP TABLE {tables}")
    return rows


def _execute_planned(cursor: _Timed, sql: str, params: dict[str, Any], **planner: str) -> None:
    """Run one statement with planner settings (SET LOCAL, set back after it)."""
    before = {}
    for name, value in planner.items():
        cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value])
        before[name] = cursor.fetchall()[0][0]
    cursor.execute(sql, params)
    for name, value in before.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def _range_params(start: date, end: date, chain: bool) -> dict[str, Any]:
    p = start - timedelta(days=1)
    return {
        "tz": timezone.get_current_timezone_name(),
        "start": start,
        "start_ts": day_bounds(start)[0],
        "end": day_bounds(end)[1],
        "p": p,
        "e": end,
        "e1": end + timedelta(days=1),
        "month_e": rules.month_start(end),
        "chain": chain and p.year == start.year,
        "year_from": start.year + 1,  # the 1 January rows that restart year-to-date sums
        "year_to": end.year,
    }


def _open_build(cursor: _Timed, params: dict[str, Any]) -> None:
    """The session settings and the status calendar (rb_nu) of a build's transaction."""
    cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.ROLLUP_BUILD_WORK_MEM])
    cursor.execute(_CALENDAR)
    cursor.executemany(
        "INSERT INTO rb_nu (nu, grace_from, lapsed_from) VALUES (%s, %s, %s)",
        calendar_params(params["p"], params["e"]),
    )


def _delete_range(cursor: _Timed, start: date, end: date) -> None:
    for table in ("dailyrollup", "agentrollup", "demographicrollup"):
        cursor.execute(
            f"DELETE FROM reporting_{table} WHERE day BETWEEN %s AND %s",  # noqa: S608
            [start, end],
        )


def _finish(cursor: _Timed, params: dict[str, Any], agent_events: str, started: float) -> None:
    """The agent rows (from every group's agent events), the province rows, the days'
    RollupDay marks and the figures version, in the build's last transaction."""
    start, end = params["start"], params["e"]
    cursor.execute(_AGENT_EVENTS.format(source=agent_events), params)
    cursor.execute(_agent_insert_sql(), params)
    derive_province_rollup(cursor, start, end)
    seconds = (time.monotonic() - started) / ((end - start).days + 1)
    cursor.execute(
        """INSERT INTO reporting_rollupday (day, built_at, seconds, ledger_mark,
                                            participant_mark)
           SELECT d::date, clock_timestamp(), %s, %s, %s
           FROM generate_series(%s::date, %s::date, interval '1 day') d
           ON CONFLICT (day) DO UPDATE SET built_at = clock_timestamp(),
               seconds = EXCLUDED.seconds,
               ledger_mark = EXCLUDED.ledger_mark,
               participant_mark = EXCLUDED.participant_mark""",
        [seconds, params["mark"], params["pmark"], start, end],
    )
    cursor.execute(BUMP_SQL)  # the figures cache's key (reporting/cache.py)
    cursor.execute("DROP TABLE rb_aev")


def build_range(start: date, end: date, *, chain: bool) -> int:
    """Rebuild every day from `start` to `end`; `chain` = carry the year-to-date sums of the
    stored day before `start` (same year). Readers see the old range or the new one, never a
    mix. The participants are taken a group of provinces at a time (settings.
    ROLLUP_BUILD_CHUNK participants or one province), so the temp space is that of the largest
    group; with settings.ROLLUP_BUILD_WORKERS > 1 and outside a transaction, that many sessions
    build the groups at once (`_build_parallel`), otherwise one transaction builds them in
    turn. Returns the number of DailyRollup rows written."""
    params = _range_params(start, end, chain)
    workers = settings.ROLLUP_BUILD_WORKERS
    if workers > 1 and not connection.in_atomic_block:
        return _build_parallel(params, workers)
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as raw:
        cursor = _Timed(raw)
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        mark, pmark = marks()
        params.update(mark=mark, pmark=pmark, low=0)
        chunks = province_chunks(params["end"], pmark, settings.ROLLUP_BUILD_CHUNK)
        _delete_range(cursor, start, end)
        _open_build(cursor, params)
        cursor.execute(_AGENT_ACCUMULATOR)
        rows = 0
        for low, high in chunks:
            rows += _build_chunk(cursor, {**params, "plo": low, "phi": high}, _DIRECT)
        _finish(cursor, params, _DIRECT.agent_events, started)
        cursor.execute("DROP TABLE rb_nu, rb_aev_all")
    logger.info(
        "rollup build %s..%s in %d province group(s): %s", start, end, len(chunks), cursor.report()
    )
    return rows


# --- the parallel build ----------------------------------------------------------------------
# PostgreSQL runs one statement of one session on one core (and never scans a temp table with
# parallel workers), so the groups of provinces are built by several sessions at once: each
# group in its own transaction on the build's exported snapshot (SET TRANSACTION SNAPSHOT: every
# worker reads the same committed state, as one transaction would), into UNLOGGED staging
# tables; the last transaction replaces the range's rows with the staged ones, so readers still
# see the old range or the new one. The build lock keeps refreshes and other builds out from
# the first step to the last.
_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")
_STAGE_SOURCES = {_STAGED.daily: _DIRECT.daily, _STAGED.demographic: _DIRECT.demographic}
_STAGE_COLUMNS = {
    _STAGED.daily: ("day", *DIMS, "registered", "active", "grace", "lapsed", *FLOWS,
                    *(f"ytd_{f}" for f in FLOWS)),
    _STAGED.demographic: ("day", *DEMO_KEYS, "registered", "active", "grace", "lapsed"),
}  # fmt: skip


def _drop_stage(cursor: Any) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {', '.join(astuple(_STAGED))}")


def _create_stage() -> None:
    """The staging tables, committed (the workers' sessions must see them); a stage left by a
    build that died is dropped first (the caller holds the build lock)."""
    with connection.cursor() as cursor:
        _drop_stage(cursor)
        for stage, source in _STAGE_SOURCES.items():
            cols = ", ".join(_STAGE_COLUMNS[stage])
            cursor.execute(
                f"CREATE UNLOGGED TABLE {stage} AS SELECT {cols} FROM {source} WITH NO DATA"  # noqa: S608
            )
        cursor.execute(f"CREATE UNLOGGED TABLE {_STAGED.agent_events} {_AGENT_EVENT_COLUMNS}")


def _build_parallel(params: dict[str, Any], workers: int) -> int:
    start, end = params["start"], params["e"]
    started = time.monotonic()
    # The build lock is a transaction lock held by a session of its own from the first step to
    # the last (a session-level lock would not be safe behind pgbouncer's transaction pooling).
    holder = connections.create_connection(connection.alias)
    locked = False
    try:
        holder.set_autocommit(False)
        with holder.cursor() as locker:
            locker.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        locked = True
        _create_stage()
        with transaction.atomic(), connection.cursor() as raw:
            raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            raw.execute("SELECT pg_export_snapshot()")
            exported = raw.fetchone()
            if exported is None or not _SNAPSHOT_ID.match(exported[0]):
                raise RuntimeError(f"unexpected snapshot id {exported!r}")
            mark, pmark = marks()
            params.update(mark=mark, pmark=pmark, low=0)
            chunks = province_chunks(params["end"], pmark, settings.ROLLUP_BUILD_CHUNK)
            rows, steps = _run_workers(exported[0], params, chunks, workers)
        with transaction.atomic(), connection.cursor() as raw:
            cursor = _Timed(raw)
            cursor.steps.extend(steps)
            cursor.execute(
                "SELECT set_config('work_mem', %s, true)", [settings.ROLLUP_BUILD_WORK_MEM]
            )
            _delete_range(cursor, start, end)
            for stage, source in _STAGE_SOURCES.items():
                cols = ", ".join(_STAGE_COLUMNS[stage])
                cursor.execute(
                    f"INSERT INTO {source} ({cols}) SELECT {cols} FROM {stage}"  # noqa: S608
                )
            _finish(cursor, params, _STAGED.agent_events, started)
    finally:
        # Cleanup never hides the build's own error nor fails a committed build: the next build
        # drops a stage left behind. Only the build that holds the lock touches the stage.
        try:
            if locked:
                with connection.cursor() as cleanup:
                    _drop_stage(cleanup)
        except Exception:
            logger.exception("rollup build: the staging tables were not dropped")
        finally:
            try:
                holder.rollback()  # the lock goes with the holder's transaction
            except Exception:
                logger.exception("rollup build: the lock session did not roll back")
            finally:
                holder.close()
    logger.info(
        "rollup build %s..%s in %d province group(s), %d sessions: %s",
        start, end, len(chunks), min(workers, len(chunks)), cursor.report(),
    )  # fmt: skip
    return rows


def _run_workers(
    snapshot: str, params: dict[str, Any], chunks: list[tuple[str, str | None]], workers: int
) -> tuple[int, list[tuple[str, float]]]:
    """Build the groups in `workers` threads, each with its own database session taking the
    next group until none is left; the first error stops the others after their current group
    and is raised. If the calling thread is interrupted (Ctrl-C), the sessions' statements are
    cancelled and the threads joined before it goes on. Returns the staged DailyRollup rows and
    every step's time, once every group is built."""
    alias = connection.alias
    todo: queue.SimpleQueue[tuple[str, str | None]] = queue.SimpleQueue()
    for chunk in chunks:
        todo.put(chunk)
    failed = threading.Event()
    lock = threading.Lock()
    done: list[tuple[int, list[tuple[str, float]]]] = []
    errors: list[BaseException] = []
    backends: dict[str, int] = {}  # thread name -> its session's backend pid, while open

    def work() -> None:
        session = None
        name = threading.current_thread().name
        try:
            session = connections[alias]  # a new connection: Django's are per thread
            while not failed.is_set():
                try:
                    low, high = todo.get_nowait()
                except queue.Empty:
                    return
                with transaction.atomic(using=alias), session.cursor() as raw:
                    raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    raw.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                    with lock:
                        backends[name] = session.connection.info.backend_pid
                    cursor = _Timed(raw)
                    _open_build(cursor, params)
                    group = {**params, "plo": low, "phi": high}
                    rows = _build_chunk(cursor, group, _STAGED)
                    cursor.execute("DROP TABLE rb_nu")
                with lock:
                    done.append((rows, cursor.steps))
        except BaseException as exc:  # re-raised in the calling thread
            failed.set()
            with lock:
                errors.append(exc)
        finally:
            with lock:
                backends.pop(name, None)
            if session is not None:
                session.close()

    threads = [
        threading.Thread(target=work, name=f"rollup-build-{i}", daemon=True)
        for i in range(min(workers, len(chunks)))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:
        failed.set()
        with lock:
            open_sessions = list(backends.values())
        _cancel(open_sessions)
        for thread in threads:
            thread.join()
        raise
    for extra in errors[1:]:
        logger.error("rollup build: another session failed too: %r", extra)
    if errors:
        raise errors[0]
    if len(done) != len(chunks):
        raise RuntimeError(f"rollup build: {len(done)} of {len(chunks)} groups built")
    return sum(r for r, _s in done), [step for _r, steps in done for step in steps]


def _cancel(backends: list[int]) -> None:
    """Cancel the statements of the build's sessions (from a connection of its own: the
    caller's may be busy or broken)."""
    other = connections.create_connection(connection.alias)
    try:
        with other.cursor() as cursor:
            for pid in backends:
                cursor.execute("SELECT pg_cancel_backend(%s)", [pid])
    except Exception:
        logger.exception("rollup build: the sessions could not be cancelled")
    finally:
        other.close()


# --- the intraday delta --------------------------------------------------------------------------
def _delta_daily_sql() -> str:
    dims = ", ".join(DIMS)
    sums = ", ".join(f"sum({f}) AS {f}" for f in FLOWS)
    return f"""
CREATE TEMP TABLE rd_daily ON COMMIT DROP AS
SELECT {dims}, sum(registered) AS registered, sum(active) AS active, sum(grace) AS grace,
       sum(lapsed) AS lapsed, {sums}
FROM (
    SELECT {dims}, sign AS registered, sign * (s_d = 'active')::int AS active,
           sign * (s_d = 'grace')::int AS grace, sign * (s_d = 'lapsed')::int AS lapsed,
           sign * is_new::int AS new_registrations,
           sign * (NOT is_new AND s_p = 'lapsed' AND s_d <> 'lapsed')::int AS reactivations,
           sign * (s_d = 'lapsed' AND (is_new OR s_p <> 'lapsed'))::int AS lapses,
           0 AS payments, 0::bigint AS collected_jkk, 0::bigint AS collected_jkm,
           0::bigint AS collected_jht, 0::bigint AS collected_other, 0::bigint AS collected_total
    FROM (SELECT -1 AS sign, * FROM rd_old UNION ALL SELECT 1, * FROM rd_new) s
    UNION ALL
    SELECT {", ".join(f"st.{d}" for d in DIMS)}, 0, 0, 0, 0, 0, 0, 0, m.payments, m.jkk, m.jkm,
           m.jht, m.other, m.amount
    FROM rb_money_split m JOIN rd_new st ON st.id = m.pid
) u
GROUP BY {dims}
"""  # noqa: S608


def _delta_apply_daily_sql() -> str:
    stocks = ("registered", "active", "grace", "lapsed")
    sets = ", ".join(
        [f"{c} = t.{c} + d.{c}" for c in (*stocks, *FLOWS)]
        + [f"ytd_{f} = t.ytd_{f} + d.{f}" for f in FLOWS]
    )
    match = " AND ".join(
        f"COALESCE(t.{d}, -1) = COALESCE(d.{d}, -1)" if d == "partner_id" else f"t.{d} = d.{d}"
        for d in DIMS
    )
    dims = ", ".join(DIMS)
    cols = ", ".join((*stocks, *FLOWS))
    d_cols = ", ".join(f"d.{c}" for c in (*DIMS, *stocks, *FLOWS))
    ytd = ", ".join(f"ytd_{f}" for f in FLOWS)
    return f"""
WITH upd AS (
    UPDATE reporting_dailyrollup t SET {sets}
    FROM rd_daily d WHERE t.day = %(day)s AND {match}
    RETURNING {", ".join(f"d.{d}" for d in DIMS)}
)
INSERT INTO reporting_dailyrollup (day, {dims}, {cols}, {ytd})
SELECT %(day)s, {d_cols}, {", ".join(f"d.{f}" for f in FLOWS)}
FROM rd_daily d
WHERE NOT EXISTS (SELECT 1 FROM upd t WHERE {match})
"""  # noqa: S608


_DELTA_DEMOGRAPHIC = """
WITH d AS (
    SELECT province_id, occupation_id, partner_id, sex, age_band, sum(sign) AS registered,
           sum(sign * (s_d = 'active')::int) AS active, sum(sign * (s_d = 'grace')::int) AS grace,
           sum(sign * (s_d = 'lapsed')::int) AS lapsed
    FROM (SELECT -1 AS sign, * FROM rd_old UNION ALL SELECT 1, * FROM rd_new) s
    GROUP BY province_id, occupation_id, partner_id, sex, age_band
), upd AS (
    UPDATE reporting_demographicrollup t
    SET registered = t.registered + d.registered, active = t.active + d.active,
        grace = t.grace + d.grace, lapsed = t.lapsed + d.lapsed
    FROM d
    WHERE t.day = %(day)s AND t.province_id = d.province_id AND t.occupation_id = d.occupation_id
      AND COALESCE(t.partner_id, -1) = COALESCE(d.partner_id, -1) AND t.sex = d.sex
      AND t.age_band = d.age_band
    RETURNING d.province_id, d.occupation_id, d.partner_id, d.sex, d.age_band
)
INSERT INTO reporting_demographicrollup (day, province_id, occupation_id, partner_id, sex,
                                         age_band, registered, active, grace, lapsed)
SELECT %(day)s, province_id, occupation_id, partner_id, sex, age_band, registered, active, grace,
       lapsed
FROM d
WHERE registered > 0 AND NOT EXISTS (
    SELECT 1 FROM upd u WHERE u.province_id = d.province_id AND u.occupation_id = d.occupation_id
      AND COALESCE(u.partner_id, -1) = COALESCE(d.partner_id, -1) AND u.sex = d.sex
      AND u.age_band = d.age_band)
"""

_DELTA_AGENT = """
WITH d AS (
    SELECT agent_id, sum(registered) AS registered, sum(active) AS active,
           sum(new_registrations) AS new_registrations, sum(collected) AS collected
    FROM (
        SELECT registered_by_id AS agent_id, sign AS registered,
               sign * (s_d = 'active')::int AS active, sign * is_new::int AS new_registrations,
               0::bigint AS collected
        FROM (SELECT -1 AS sign, * FROM rd_old UNION ALL SELECT 1, * FROM rd_new) s
        WHERE registered_by_id IS NOT NULL
        UNION ALL
        SELECT collected_by_id, 0, 0, 0, amount FROM rb_money_split
        WHERE collected_by_id IS NOT NULL
    ) u
    GROUP BY agent_id
), upd AS (
    UPDATE reporting_agentrollup t
    SET registered = t.registered + d.registered, active = t.active + d.active,
        new_registrations = t.new_registrations + d.new_registrations,
        collected_total = t.collected_total + d.collected,
        ytd_new_registrations = t.ytd_new_registrations + d.new_registrations,
        ytd_collected_total = t.ytd_collected_total + d.collected
    FROM d WHERE t.day = %(day)s AND t.agent_id = d.agent_id
    RETURNING t.agent_id
)
INSERT INTO reporting_agentrollup (day, agent_id, branch_id, province_id, registered, active,
                                   new_registrations, collected_total, ytd_new_registrations,
                                   ytd_collected_total)
SELECT %(day)s, d.agent_id, sp.branch_id, COALESCE(b.province_id, ''), d.registered, d.active,
       d.new_registrations, d.collected, d.new_registrations, d.collected
FROM d
JOIN enrollment_staffprofile sp ON sp.id = d.agent_id
LEFT JOIN enrollment_branch b ON b.id = sp.branch_id
WHERE NOT EXISTS (SELECT 1 FROM upd u WHERE u.agent_id = d.agent_id)
"""


def refresh_day(day: date) -> int | None:
    """Bring a built day's rows up to date with the ledger entries and participants added since
    its build (ids above the marks in RollupDay), in one transaction: for the participants they
    touch, the day's contribution is computed twice - as the build saw them (entries and
    participants up to the old marks) and now - and the difference is added to the day's rows
    (stocks, flows and year-to-date flows); the new entries' money is added the same way. Cost
    ~ the new entries, not the ledger. Returns the number of touched participants, or None if
    the day was not built by the event build (no marks): then the caller rebuilds it.

    Like the rebuild, it sees the ledger as it is: a late entry for an earlier day changes that
    earlier day only at the next rebuild of it (the nightly build rebuilds yesterday), and an
    entry committed after a build although its id is below the build's mark (two concurrent
    payment transactions committing out of id order during the build) is only counted at the
    next rebuild of the day."""
    params: dict[str, Any] = day_params(day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        cursor.execute(
            "SELECT ledger_mark, participant_mark FROM reporting_rollupday WHERE day = %s"
            " FOR UPDATE",
            [day],
        )
        row = cursor.fetchone()
        if row is None or row[0] is None or row[1] is None:
            return None
        old_mark, old_pmark = int(row[0]), int(row[1])
        mark, pmark = marks()
        if (mark, pmark) == (old_mark, old_pmark):
            return 0
        cursor.execute(
            """CREATE TEMP TABLE rd_touched ON COMMIT DROP AS
               SELECT participant_id AS pid FROM contributions_ledgerentry
               WHERE id > %(old)s AND id <= %(mark)s
               UNION
               SELECT id FROM enrollment_participant WHERE id > %(oldp)s AND id <= %(pmark)s""",
            {"old": old_mark, "mark": mark, "oldp": old_pmark, "pmark": pmark},
        )
        cursor.execute("SELECT count(*) FROM rd_touched")
        counted = cursor.fetchone()
        touched = int(counted[0]) if counted else 0
        cursor.execute("ANALYZE rd_touched")
        sql = state_sql("{table}", touched="rd_touched")
        cursor.execute(
            sql.replace("{table}", "rd_old"), {**params, "mark": old_mark, "pmark": old_pmark}
        )
        cursor.execute(sql.replace("{table}", "rd_new"), {**params, "mark": mark, "pmark": pmark})
        start_ts, end_ts = day_bounds(day)
        cursor.execute(
            MONEY_SQL,
            {**params, "start_ts": start_ts, "end": end_ts, "mark": mark, "low": old_mark},
        )
        cursor.execute(SPLIT_SQL.format(table="rb_split", source="rb_money"))
        cursor.execute(
            "CREATE TEMP TABLE rb_money_split ON COMMIT DROP AS "
            + MONEY_SPLIT_VIEW.format(money="rb_money", split="rb_split", group="")
        )
        cursor.execute(_delta_daily_sql(), params)
        cursor.execute(_delta_apply_daily_sql(), params)
        cursor.execute(_DELTA_DEMOGRAPHIC, params)
        cursor.execute(
            "DELETE FROM reporting_demographicrollup WHERE day = %s AND registered = 0", [day]
        )
        cursor.execute(_DELTA_AGENT, params)
        derive_province_rollup(cursor, day, day)
        cursor.execute(
            """UPDATE reporting_rollupday SET built_at = clock_timestamp(), ledger_mark = %s,
               participant_mark = %s WHERE day = %s""",
            [mark, pmark, day],
        )
        cursor.execute(BUMP_SQL)
        for table in (
            "rd_touched",
            "rd_old",
            "rd_new",
            "rb_money",
            "rb_split",
            "rb_money_split",
            "rd_daily",
        ):
            cursor.execute(f"DROP TABLE {table}")
    return touched
