"""Steps 1 and 2 of the event build: the group's participants, their payment entries, and every
participant's status changes over the range (rb_chg)."""

from __future__ import annotations

from contributions import rules_sql
from contributions.rules_sql import ACTIVE_CODE, GRACE_CODE, LAPSED_CODE, T

# --- step 1 and 2: per-participant status changes ---------------------------------------------
# The build's current group of provinces: codes in [plo, phi), phi NULL for the last group
# (group.province_chunks).
IN_GROUP = "{col} >= %(plo)s AND (%(phi)s::text IS NULL OR {col} < %(phi)s)"

PARTICIPANTS_SQL = f"""
CREATE TEMP TABLE rb_pa ON COMMIT DROP AS
SELECT pa.id AS pid, (pa.created_at AT TIME ZONE %(tz)s)::date AS reg_day,
       dense_rank() OVER (ORDER BY pa.province_id, pa.regency_id, pa.occupation_id, pa.channel,
                                   pa.partner_id) AS gid,
       dense_rank() OVER (ORDER BY pa.province_id, pa.occupation_id, pa.partner_id, pa.sex)
           AS dgid,
       COALESCE(c.start_month, date_trunc('month', pa.created_at AT TIME ZONE %(tz)s)::date) AS sm,
       pa.province_id, pa.regency_id, pa.occupation_id, pa.channel, pa.partner_id, pa.sex,
       pa.registered_by_id, pa.declared_income, pa.jht, b.b25, b.b35, b.b45, b.b55
FROM {T.participant} pa
LEFT JOIN {T.coverage} c ON c.participant_id = pa.id
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
  AND {IN_GROUP.format(col="pa.province_id")}
"""  # noqa: S608

# Payment entries with their payment's local day, next unpaid month if they are the latest,
# and their reversal's local day (only reversals the range can see); with the columns the
# money of the range needs, so the group's payments are read once (rb_money takes the range's
# rows from here). Both tables are cut to the group before the join (a payment and its entry
# are of the same participant; group.members_bitmap): otherwise every group hashes all the
# payments of the year. Joins between participant-keyed tables name the participant, so that on
# a Citus cluster each runs on the node holding it.
ENTRIES_SQL = f"""
CREATE TEMP TABLE rb_entry ON COMMIT DROP AS
SELECT e.participant_id AS pid, (p.paid_at AT TIME ZONE %(tz)s)::date AS d,
       {rules_sql.next_unpaid_after("e")} AS nu,
       rv.rev_at, e.amount, p.collected_by_id, e.period_start, e.months, p.payer_type
FROM {T.ledger} e
JOIN {T.payment} p ON p.participant_id = e.participant_id AND p.id = e.payment_id
LEFT JOIN (SELECT participant_id, reverses_id, min(created_at) AS rev_at FROM {T.ledger}
           WHERE kind = 'reversal' AND id <= %(mark)s AND created_at < %(end)s
           GROUP BY participant_id, reverses_id) rv
       ON rv.participant_id = e.participant_id AND rv.reverses_id = e.id
WHERE e.kind = 'payment' AND e.id <= %(mark)s AND p.paid_at < %(end)s
  AND CASE WHEN e.participant_id <= %(pmark)s THEN get_bit(%(members)s, e.participant_id) = 1 END
  AND CASE WHEN p.participant_id <= %(pmark)s THEN get_bit(%(members)s, p.participant_id) = 1 END
"""  # noqa: S608


REVERSED_SQL = """
CREATE TEMP TABLE rb_revpid ON COMMIT DROP AS
SELECT DISTINCT pid FROM rb_entry WHERE rev_at IS NOT NULL
"""

CALENDAR_SQL = """
CREATE TEMP TABLE rb_nu (nu date PRIMARY KEY, grace_from date, lapsed_from date) ON COMMIT DROP
"""


def _band(day: str) -> str:
    """The age band on `day` as its index in definitions.AGE_BANDS (rb_pa's bXX = the first day
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
_G, _L = _calendar_day("n.grace_from", "k.n"), _calendar_day("n.lapsed_from", "k.n")
_PG, _PL = _calendar_day("np.grace_from", "k.np"), _calendar_day("np.lapsed_from", "k.np")
_STATUS_BEFORE = rules_sql.status_by_calendar("(a - 1)", "pg", "pl")
_STATUS_A = rules_sql.status_by_calendar("a", "g", "l")
_STATUS_G = rules_sql.status_by_calendar("g", "g", "l")
CHANGES_SQL = f"""
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
SELECT y.gid, y.dgid, y.agent, v.day, v.s_from, v.s_to, v.x, {_band("v.day")}::smallint AS band,
       CASE WHEN v.x THEN {_band("(v.day - 1)")} END::smallint AS x_band
FROM (
    -- (OFFSET 0 keeps each derived table a step of its own: the calendar days and statuses
    -- are computed once per segment, not once per use.)
    SELECT *, CASE WHEN a > f THEN {_STATUS_BEFORE} END AS s_before, {_STATUS_A} AS s_a,
           {_STATUS_G} AS s_g
    FROM (
        SELECT pa.gid::int AS gid, pa.dgid::int AS dgid, pa.registered_by_id AS agent, pa.b25,
               pa.b35, pa.b45, pa.b55, s.x, k.a, k.b, k.f, {_G} AS g, {_L} AS l, {_PG} AS pg,
               {_PL} AS pl
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
    (1, y.g, {ACTIVE_CODE}, y.s_g, false),
    (2, y.l, {GRACE_CODE}, {LAPSED_CODE}, false)
) v(kind, day, s_from, s_to, x)
WHERE (y.s_before IS DISTINCT FROM y.s_a OR y.x OR (y.a < y.g AND y.g < y.b)
       OR (y.a < y.l AND y.l < y.b))
  AND CASE v.kind WHEN 0 THEN v.s_from IS DISTINCT FROM v.s_to OR v.x
                  WHEN 1 THEN y.a < y.g AND y.g < y.b
                  ELSE y.a < y.l AND y.l < y.b AND y.g < y.l END
"""  # noqa: S608
