"""The cohort rollups (CohortRollup, RetentionFlowRollup): retention by registration month and
the lapse and reactivation flows per month, built set-based from the participants and the
ledger after every rollup build (`rebuild_rollups`), or on their own (`rebuild_cohorts`).

Definitions (docs/reporting.md, "Cohort retention"):

- A participant's *cohort* is their membership's start month (Coverage.start_month, the
  registration month); membership month k is the calendar month cohort + k - 1.
- *Active at membership month k*: the dashboard's status at the end of the last day of that
  month is active (contributions.coverage.status_at_month_end): the month is paid by entries
  paid by then and not reversed by then. Only complete months count: the rollups run to the
  last month before today's.
- *Lapses* in month m: lapsed at the end of m and not at the end of m - 1 (or registered in
  m); *reactivations*: lapsed at the end of m - 1 and not at the end of m (month-end states,
  so a participant who lapses and pays again within one month counts in neither).
- Cuts: the province (or the whole country) and at most one of occupation, registration
  channel, payer type and agent (`registered_by`). The payer type is that of the
  participant's first payment made by the end of the last complete month
  (enrollment.PayerType; "self" before any payment, as Coverage.payer_type): it does not move
  as later payers change.

How: per participant, the months in which the next unpaid month N changes (the local months of
payments, and for participants with a reversal the exact N over the entries live at the end of
each payment or reversal month) give *segments* of months with one N. Inside a segment the
status at month ends only moves forward (rules_sql.status_at_month_end): active before N,
lapsed from the month L of coverage.month_end_calendar. So each segment gives at most one run
of active months and one of lapsed months; active runs become +1/-1 at membership months,
summed into each cohort's curve by a running sum; lapsed runs are merged across segments and
their starts and ends are the lapses and reactivations. The last 24 cohorts and 24 months are
kept (COHORTS, MONTHS).

A build replaces every row in one transaction (readers see the old figures or the new ones)
and raises the figures version; it is skipped when nothing it reads changed since the last one
(same last month, no payment entry paid before this month above the ledger mark, no
participant registered before this month added or edited since).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from contributions import coverage as rules
from contributions import rules_sql
from contributions.rates import add_months
from contributions.rules_sql import LAPSED_CODE, T

from ..cache import BUMP_SQL
from ..models import CohortBuild
from .definitions import LOCK_KEY, day_bounds

logger = logging.getLogger(__name__)

COHORTS = 24  # registration months shown: the last 24 complete ones
MONTHS = 24  # membership months per cohort; also the months of lapse/reactivation flows
DIMENSIONS = ("occupation", "channel", "payer", "agent")


@dataclass
class CohortResult:
    built: bool
    last_month: date
    cohort_rows: int = 0
    flow_rows: int = 0
    seconds: float = 0.0


def last_complete_month(today: date) -> date:
    return add_months(rules.month_start(today), -1)


def cohort_params(today: date) -> dict[str, Any]:
    wn = last_complete_month(today)
    w0 = add_months(wn, -(MONTHS - 1))
    return {
        "tz": timezone.get_current_timezone_name(),
        "wn": wn,
        "wn1": add_months(wn, 1),
        "w0": w0,
        "wp": add_months(w0, -1),
        "c0": add_months(wn, -(COHORTS - 1)),
        "cut": day_bounds(add_months(wn, 1))[0],
        "thr_hi": rules.lapse_threshold(rules.month_end(wn)),
    }


PARTICIPANTS_SQL = f"""
CREATE TEMP TABLE rc_pa ON COMMIT DROP AS
SELECT pa.id AS pid,
       COALESCE(c.start_month, date_trunc('month', pa.created_at AT TIME ZONE %(tz)s)::date) AS sm,
       pa.province_id, pa.occupation_id, pa.channel, pa.registered_by_id AS agent
FROM {T.participant} pa
LEFT JOIN {T.coverage} c ON c.participant_id = pa.id
WHERE pa.created_at < %(cut)s AND pa.id <= %(pmark)s
"""  # noqa: S608

# Payment entries paid before this month, by the local month of their payment and of their
# reversal (if one was made before this month: a later one does not change a past month end).
ENTRIES_SQL = f"""
CREATE TEMP TABLE rc_entry ON COMMIT DROP AS
SELECT e.participant_id AS pid,
       date_trunc('month', p.paid_at AT TIME ZONE %(tz)s)::date AS pm,
       {rules_sql.next_unpaid_after("e")} AS nu,
       date_trunc('month', rv.rev_at AT TIME ZONE %(tz)s)::date AS rm,
       p.payer_type, p.paid_at, e.id
FROM {T.ledger} e
JOIN {T.payment} p ON p.participant_id = e.participant_id AND p.id = e.payment_id
LEFT JOIN (SELECT participant_id, reverses_id, min(created_at) AS rev_at FROM {T.ledger}
           WHERE kind = 'reversal' AND id <= %(mark)s AND created_at < %(cut)s
           GROUP BY participant_id, reverses_id) rv
       ON rv.participant_id = e.participant_id AND rv.reverses_id = e.id
WHERE e.kind = 'payment' AND e.id <= %(mark)s AND p.paid_at < %(cut)s
  AND e.participant_id <= %(pmark)s
"""  # noqa: S608

# Each participant with the dimensions of the cuts (the payer: their first payment's).
DIMENSIONS_SQL = """
CREATE TEMP TABLE rc_pd ON COMMIT DROP AS
SELECT pa.pid, pa.sm, pa.province_id, pa.occupation_id, pa.channel,
       COALESCE(fp.payer_type, 'self') AS payer, pa.agent
FROM rc_pa pa
LEFT JOIN (SELECT DISTINCT ON (pid) pid, payer_type FROM rc_entry ORDER BY pid, paid_at, id) fp
       ON fp.pid = pa.pid
WHERE pa.sm <= %(wn)s
"""

CALENDAR_SQL = """
CREATE TEMP TABLE rc_cal (n date PRIMARY KEY, l date) ON COMMIT DROP
"""

# Segments [a, b) of months with one next unpaid month n (b clipped to the month after the last
# complete one), and L = the first month at whose end n is lapsed.
SEGMENTS_SQL = """
CREATE TEMP TABLE rc_seg ON COMMIT DROP AS
WITH rev AS (
    SELECT DISTINCT pid FROM rc_entry WHERE rm IS NOT NULL
), plain AS (
    SELECT pid, c, max(max(nu)) OVER (PARTITION BY pid ORDER BY c) AS nu
    FROM (
        SELECT pid, pm AS c, nu FROM rc_entry WHERE pid NOT IN (SELECT pid FROM rev)
        UNION ALL
        SELECT pid, '-infinity'::date, NULL FROM rc_pd WHERE pid NOT IN (SELECT pid FROM rev)
    ) u
    GROUP BY pid, c
), rdays AS (
    SELECT pid, pm AS c FROM rc_entry WHERE pid IN (SELECT pid FROM rev)
    UNION
    SELECT pid, rm FROM rc_entry WHERE rm IS NOT NULL
    UNION
    SELECT pid, '-infinity'::date FROM rev
), reversed AS (
    SELECT d.pid, d.c, max(e.nu) AS nu
    FROM rdays d
    LEFT JOIN rc_entry e ON e.pid = d.pid AND e.pm <= d.c AND (e.rm IS NULL OR e.rm > d.c)
    GROUP BY d.pid, d.c
), changes AS (
    SELECT pid, c, nu FROM plain UNION ALL SELECT pid, c, nu FROM reversed
)
SELECT s.pid, s.a, s.b, s.n,
       COALESCE(cal.l, CASE WHEN s.n > %(thr_hi)s THEN 'infinity'::date
                            ELSE '-infinity'::date END) AS l
FROM (
    SELECT ch.pid, GREATEST(ch.c, pd.sm) AS a,
           LEAST(COALESCE(lead(ch.c) OVER w, 'infinity'::date), %(wn1)s::date) AS b,
           COALESCE(ch.nu, pd.sm) AS n
    FROM changes ch JOIN rc_pd pd ON pd.pid = ch.pid
    WINDOW w AS (PARTITION BY ch.pid ORDER BY ch.c)
) s
LEFT JOIN rc_cal cal ON cal.n = s.n
WHERE s.a < s.b AND s.b > %(wp)s
"""

_MONTHS_FROM_SM = (
    "((extract(year from {m})::int - extract(year from pd.sm)::int) * 12"
    " + extract(month from {m})::int - extract(month from pd.sm)::int + 1)"
)
_K_START = _MONTHS_FROM_SM.format(m="s.a")
_K_END = _MONTHS_FROM_SM.format(m="LEAST(s.b, s.n)")
_FINE = "pd.province_id, pd.occupation_id, pd.channel, pd.payer, pd.agent"
# The status at the first month of a lapsed run, in the rule's own words (always lapsed).
_LAPSED_AT_START = rules_sql.status_at_month_end("r.s", "r.n", "r.l")

# Per fine group (every dimension) and cohort: the size (k = 0) and the +1/-1 of active runs.
COHORT_FINE_SQL = f"""
CREATE TEMP TABLE rc_cfine ON COMMIT DROP AS
SELECT {_FINE}, pd.sm AS cohort, 0 AS k, count(*) AS n
FROM rc_pd pd WHERE pd.sm >= %(c0)s GROUP BY {_FINE}, pd.sm
UNION ALL
SELECT {_FINE}, pd.sm, x.k, sum(x.d)
FROM rc_seg s
JOIN rc_pd pd ON pd.pid = s.pid
CROSS JOIN LATERAL (VALUES ({_K_START}, 1), ({_K_END}, -1)) x(k, d)
WHERE pd.sm >= %(c0)s AND s.a < LEAST(s.b, s.n) AND {_K_START} <= {MONTHS}
  AND x.k <= {MONTHS}
GROUP BY {_FINE}, pd.sm, x.k
"""  # noqa: S608

# Lapsed runs: [max(a, L), b) per segment, merged across adjacent segments; from the month
# before the first counted one (wp) on, where the calendar holds (a run that started earlier
# starts at wp, and is not counted as a lapse).
FLOW_FINE_SQL = f"""
CREATE TEMP TABLE rc_ffine ON COMMIT DROP AS
WITH runs AS (
    SELECT s.pid, GREATEST(s.a, s.l, %(wp)s::date) AS s, s.b AS e, s.n, s.l
    FROM rc_seg s WHERE GREATEST(s.a, s.l, %(wp)s::date) < s.b
), marked AS (
    SELECT r.pid, r.s, r.e, {_LAPSED_AT_START} AS status_at_s,
           lag(r.e) OVER w IS DISTINCT FROM r.s AS starts,
           lead(r.s) OVER w IS DISTINCT FROM r.e AS ends
    FROM runs r WINDOW w AS (PARTITION BY r.pid ORDER BY r.s)
)
SELECT {_FINE}, x.month, sum(x.lapse) AS lapses, sum(x.react) AS reactivations
FROM marked m
JOIN rc_pd pd ON pd.pid = m.pid
CROSS JOIN LATERAL (VALUES (m.s, 1, 0, m.starts), (m.e, 0, 1, m.ends)) x(month, lapse, react, ok)
WHERE x.ok AND m.status_at_s = {LAPSED_CODE} AND x.month BETWEEN %(w0)s AND %(wn)s
GROUP BY {_FINE}, x.month
"""  # noqa: S608

# The cuts of a fine row: the country or its province, with no dimension or one of them;
# an agent's rows for the whole country only (an agent works in one branch, and per province
# they would double the largest part of the table).
_CUTS = """CROSS JOIN LATERAL (VALUES
    ('', '', ''), ('', 'occupation', f.occupation_id), ('', 'channel', f.channel),
    ('', 'payer', f.payer), ('', 'agent', f.agent::text),
    (f.province_id, '', ''), (f.province_id, 'occupation', f.occupation_id),
    (f.province_id, 'channel', f.channel), (f.province_id, 'payer', f.payer)
) c(province_id, dimension, key)"""

COHORT_CUT_SQL = f"""
CREATE TEMP TABLE rc_cut ON COMMIT DROP AS
SELECT c.province_id, c.dimension, c.key, f.cohort, f.k, sum(f.n)::int AS n
FROM rc_cfine f {_CUTS}
WHERE c.key IS NOT NULL
GROUP BY c.province_id, c.dimension, c.key, f.cohort, f.k
"""  # noqa: S608

# Every complete membership month of every cut's cohort, active = the running sum of the
# cohort's +1/-1 up to that month.
COHORT_INSERT_SQL = f"""
INSERT INTO reporting_cohortrollup (province_id, dimension, key, cohort, month, participants,
                                    active)
SELECT province_id, dimension, key, cohort, k, size,
       sum(d) OVER (PARTITION BY province_id, dimension, key, cohort ORDER BY k)
FROM (
  -- a -1 one month after the last complete one has no month of its own (HAVING)
  SELECT province_id, dimension, key, cohort, k, max(size) AS size, sum(d) AS d
  FROM (
    SELECT z.province_id, z.dimension, z.key, z.cohort, g.k, z.n AS size, 0 AS d
    FROM rc_cut z
    CROSS JOIN LATERAL generate_series(
        1, LEAST({MONTHS},
                 (extract(year from %(wn)s::date)::int - extract(year from z.cohort)::int) * 12
                 + extract(month from %(wn)s::date)::int - extract(month from z.cohort)::int
                 + 1)) g(k)
    WHERE z.k = 0
    UNION ALL
    SELECT d.province_id, d.dimension, d.key, d.cohort, d.k, NULL, d.n
    FROM rc_cut d WHERE d.k > 0
  ) u
  GROUP BY province_id, dimension, key, cohort, k
  HAVING max(size) IS NOT NULL
) v
"""  # noqa: S608

FLOW_INSERT_SQL = f"""
INSERT INTO reporting_retentionflowrollup (province_id, dimension, key, month, lapses,
                                           reactivations)
SELECT c.province_id, c.dimension, c.key, f.month, sum(f.lapses), sum(f.reactivations)
FROM rc_ffine f {_CUTS}
WHERE c.key IS NOT NULL
GROUP BY c.province_id, c.dimension, c.key, f.month
"""  # noqa: S608

_TEMP = ("rc_pa", "rc_entry", "rc_pd", "rc_cal", "rc_seg", "rc_cfine", "rc_ffine", "rc_cut")


def _marks(cursor: Any) -> tuple[int, int, Any]:
    cursor.execute(
        f"SELECT COALESCE((SELECT max(id) FROM {T.ledger}), 0),"  # noqa: S608
        f" COALESCE((SELECT max(id) FROM {T.participant}), 0),"
        f" (SELECT max(updated_at) FROM {T.participant})"
    )
    row = cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), row[2]


def _unchanged(cursor: Any, params: dict[str, Any], changed: Any) -> bool:
    """Nothing the last build read has changed: same last month, no payment entry paid before
    this month above the ledger mark, no participant registered before this month above the
    participant mark or edited since the build."""
    state = CohortBuild.objects.filter(pk=1).first()
    if state is None or state.last_month != params["wn"]:
        return False
    # Participants registered this month and payments made this month change nothing yet;
    # an edit of an earlier participant may move them to another cut.
    cursor.execute(
        f"""SELECT EXISTS (SELECT 1 FROM {T.ledger} e JOIN {T.payment} p
                             ON p.participant_id = e.participant_id AND p.id = e.payment_id
                           WHERE e.id > %(mark)s AND e.kind = 'payment' AND p.paid_at < %(cut)s)
                OR EXISTS (SELECT 1 FROM {T.participant}
                           WHERE id > %(pmark)s AND created_at < %(cut)s)
                OR EXISTS (SELECT 1 FROM {T.participant}
                           WHERE updated_at > %(changed)s AND created_at < %(cut)s)""",  # noqa: S608
        {
            "mark": state.ledger_mark,
            "pmark": state.participant_mark,
            "changed": state.changed_mark or changed,
            "cut": params["cut"],
        },
    )
    row = cursor.fetchone()
    return row is not None and not row[0]


def rebuild_cohorts(*, today: date | None = None, force: bool = False) -> CohortResult:
    """Replace the cohort and flow rollups with figures to the last complete month before
    `today` (default: the portal's today), in one transaction; skipped (built=False) when
    nothing they read changed since the last build, unless `force`."""
    today = today or timezone.localdate()
    params = cohort_params(today)
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        mark, pmark, changed = _marks(cursor)
        params.update(mark=mark, pmark=pmark)
        if not force and _unchanged(cursor, params, changed):
            return CohortResult(built=False, last_month=params["wn"])
        cursor.execute("SELECT set_config('work_mem', '256MB', true)")
        # JIT compiles each statement's expressions anew (seconds at 10k participants, more
        # than the work); the statements are few and run once
        cursor.execute("SELECT set_config('jit', 'off', true)")
        cursor.execute(PARTICIPANTS_SQL, params)
        cursor.execute(ENTRIES_SQL, params)
        cursor.execute("ANALYZE rc_entry")
        cursor.execute(DIMENSIONS_SQL, params)
        cursor.execute("ANALYZE rc_pd")
        cursor.execute(CALENDAR_SQL)
        cursor.executemany(
            "INSERT INTO rc_cal (n, l) VALUES (%s, %s)",
            rules.month_end_calendar(params["wp"], params["wn"]),
        )
        cursor.execute(SEGMENTS_SQL, params)
        cursor.execute("ANALYZE rc_seg")
        cursor.execute(COHORT_FINE_SQL, params)
        cursor.execute(FLOW_FINE_SQL, params)
        cursor.execute("DELETE FROM reporting_cohortrollup")
        cursor.execute("DELETE FROM reporting_retentionflowrollup")
        cursor.execute(COHORT_CUT_SQL, params)
        cursor.execute("ANALYZE rc_cut")
        cursor.execute(COHORT_INSERT_SQL, params)
        cohort_rows = cursor.rowcount
        cursor.execute(FLOW_INSERT_SQL, params)
        flow_rows = cursor.rowcount
        seconds = time.monotonic() - started
        CohortBuild.objects.update_or_create(
            pk=1,
            defaults={
                "last_month": params["wn"],
                "built_at": timezone.now(),
                "seconds": seconds,
                "ledger_mark": mark,
                "participant_mark": pmark,
                "changed_mark": changed,
            },
        )
        cursor.execute(BUMP_SQL)
        cursor.execute(f"DROP TABLE {', '.join(_TEMP)}")
    logger.info("cohort build to %s: %d + %d rows in %.1f s", params["wn"], cohort_rows,
                flow_rows, seconds)  # fmt: skip
    return CohortResult(True, params["wn"], cohort_rows, flow_rows, time.monotonic() - started)
