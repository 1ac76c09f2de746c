"""The contributions rules as SQL fragments: the one SQL form of each rule, for the set-based
code that cannot call the Python (the daily status refresh, the reporting rollups).

Each fragment is the SQL twin of a Python function, and tests/contributions/test_rules_sql.py
proves the two agree on generated histories:

- `paid_through` / `next_unpaid_after` of a payment entry   ~ ledger.derive
- `next_unpaid(paid_through, start_month)`                    ~ coverage.next_unpaid
- `status(next_unpaid, month, threshold)`                     ~ coverage.status_for
- `status_by_calendar(day, grace_from, lapsed_from)` with
  coverage.status_calendar                                    ~ coverage.status_for, day by day
- `status_at_month_end(month, next_unpaid, lapsed_from)` with
  coverage.month_end_calendar                                 ~ coverage.status_at_month_end
- `is_lapsed` / `is_behind` / `lapse_date` (the refresh)      ~ coverage.status_for / lapse_date
- `due_date(month, due_dates)`                                ~ due_dates.due_date
- `programme_split(...)`                                      ~ rates.quote_contribution

The rules themselves (due day, grace months: PP 44/2015, Perdir 22/PERDIR.02/072022; rates and
discounts: the rate book) are cited in coverage.py and rates.py; the fragments take their
thresholds as parameters computed there, so no figure is written twice. Table and column names
come from the models (`T`), so a renamed table or column changes here and nowhere else.

Fragments are SQL text built from trusted identifiers (aliases and column names chosen by the
calling code, never user input); the values are bind parameters of the caller's statement.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from enrollment.models import Occupation, OccupationPeriod, Participant

from .due_dates import SQL_FIRST_MONTH
from .models import Coverage, LedgerEntry, Payment, RateDiscount, RateSchedule

# The status codes of the calendar form (small integers sort and sum cheaply in the rollups).
ACTIVE_CODE, GRACE_CODE, LAPSED_CODE = 1, 2, 3


def _column(model: type[models.Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)  # a concrete column, not a reverse relation
    return str(field.column)


@dataclass(frozen=True)
class _Tables:
    """The tables the set-based code reads, by their models' names."""

    ledger: str = LedgerEntry._meta.db_table
    payment: str = Payment._meta.db_table
    coverage: str = Coverage._meta.db_table
    schedule: str = RateSchedule._meta.db_table
    discount: str = RateDiscount._meta.db_table
    participant: str = Participant._meta.db_table
    occupation: str = Occupation._meta.db_table
    occupation_period: str = OccupationPeriod._meta.db_table


T = _Tables()

# LedgerEntry columns the rules read.
PERIOD_START = _column(LedgerEntry, "period_start")
MONTHS = _column(LedgerEntry, "months")


def paid_through(entry: str) -> str:
    """The last month a payment entry (alias `entry`) covers (ledger.derive's paid through)."""
    return f"({entry}.{PERIOD_START} + make_interval(months => {entry}.{MONTHS} - 1))::date"


def next_unpaid_after(entry: str) -> str:
    """The month after a payment entry's last month (= coverage.next_unpaid of its
    paid_through)."""
    return f"({entry}.{PERIOD_START} + make_interval(months => {entry}.{MONTHS}))::date"


def next_unpaid(paid_through_sql: str, start_month_sql: str) -> str:
    """coverage.next_unpaid: the month after `paid_through`, or the start month if NULL."""
    return f"COALESCE(({paid_through_sql} + interval '1 month')::date, {start_month_sql})"


def status(next_unpaid_sql: str, month_sql: str, threshold_sql: str) -> str:
    """coverage.status_for as 'active' / 'grace' / 'lapsed', given the next unpaid month and, as
    of the day D, month_sql = coverage.month_start(D), threshold_sql = coverage.lapse_threshold(D)
    (computed in Python and bound as parameters)."""
    return (
        f"CASE WHEN {next_unpaid_sql} > {month_sql} THEN 'active'"
        f" WHEN {next_unpaid_sql} <= {threshold_sql} THEN 'lapsed' ELSE 'grace' END"
    )


def status_by_calendar(day_sql: str, grace_from_sql: str, lapsed_from_sql: str) -> str:
    """coverage.status_for on `day` as a code (ACTIVE_CODE, GRACE_CODE, LAPSED_CODE), for a
    participant whose next unpaid month N has the days grace_from / lapsed_from of
    coverage.status_calendar: the status only moves forward as days pass with N fixed."""
    return (
        f"CASE WHEN {day_sql} < {grace_from_sql} THEN {ACTIVE_CODE}"
        f" WHEN {day_sql} < {lapsed_from_sql} THEN {GRACE_CODE} ELSE {LAPSED_CODE} END"
    )


def status_at_month_end(month_sql: str, next_unpaid_sql: str, lapsed_from_sql: str) -> str:
    """coverage.status_at_month_end as a code (ACTIVE_CODE, GRACE_CODE, LAPSED_CODE): the status
    at the end of `month` of a participant whose next unpaid month then was N, with
    lapsed_from_sql = the month L of coverage.month_end_calendar for N ('-infinity' below the
    calendar, 'infinity' above it). Active before N, grace from N, lapsed from L: the cohort
    build (reporting.rollups.cohorts) counts runs of months between these two boundaries."""
    return (
        f"CASE WHEN {next_unpaid_sql} > {month_sql} THEN {ACTIVE_CODE}"
        f" WHEN {month_sql} >= {lapsed_from_sql} THEN {LAPSED_CODE} ELSE {GRACE_CODE} END"
    )


def is_lapsed(paid_through_sql: str, start_month_sql: str, threshold_sql: str) -> str:
    """next_unpaid <= threshold (status lapsed), written on the columns themselves so that an
    index on paid_through can serve it; true or false, never NULL."""
    return (
        f"(({paid_through_sql} IS NOT NULL AND {paid_through_sql} < {threshold_sql})"
        f" OR ({paid_through_sql} IS NULL AND {start_month_sql} <= {threshold_sql}))"
    )


def is_behind(paid_through_sql: str, start_month_sql: str, month_sql: str) -> str:
    """next_unpaid <= the current month (status not active), on the columns themselves."""
    return (
        f"(({paid_through_sql} IS NOT NULL AND {paid_through_sql} < {month_sql})"
        f" OR ({paid_through_sql} IS NULL AND {start_month_sql} <= {month_sql}))"
    )


def due_date(month_sql: str, due_dates_sql: str, due_day_sql: str) -> str:
    """due_dates.due_date of `month_sql` (a first of month), read from `due_dates_sql`: the bind
    parameter due_dates.due_dates_param(last) - every month's effective due date from
    SQL_FIRST_MONTH on, so holidays and weekends are decided in one place (Python). A month
    outside the array falls back to the plain due day `due_day_sql`."""
    index = (
        f"((extract(year from {month_sql})::int - {SQL_FIRST_MONTH.year}) * 12"
        f" + extract(month from {month_sql})::int - {SQL_FIRST_MONTH.month} + 1)"
    )
    return (
        f"COALESCE(({due_dates_sql}::date[])[{index}], ({month_sql} + ({due_day_sql} - 1))::date)"
    )


def lapse_date(next_unpaid_sql: str, grace_sql: str, due_dates_sql: str, due_day_sql: str) -> str:
    """coverage.lapse_date: the first day a participant with this first unpaid month is lapsed,
    the day after the due date of month N + grace (grace_sql: coverage.grace_months(); the due
    dates as in `due_date`; all bind parameters)."""
    month = f"({next_unpaid_sql} + make_interval(months => {grace_sql}))::date"
    return f"({due_date(month, due_dates_sql, due_day_sql)} + 1)"


def _half_up(numerator: str, denominator: int) -> str:
    """rates._half_up for non-negative integers: numerator / denominator rounded half up."""
    return f"(2 * {numerator} + {denominator}) / {2 * denominator}"


# The occupation history as programme_split reads it: (participant_id, until_month, sector),
# a subquery PostgreSQL flattens into the probe of `held_sector`.
HISTORY = f"""(SELECT h.participant_id, h.until_month, o.sector FROM {T.occupation_period} h
               JOIN {T.occupation} o ON o.code = h.occupation_id)"""  # noqa: S608


@dataclass(frozen=True)
class SplitSources:
    """What `programme_split` reads: the rate schedule, the discounts and the occupation history
    (a relation of participant_id, until_month, sector) - the stored tables (`STORED`), or the
    temporary copies that `copy_split_sources` makes. A statement whose other tables are all
    temporary (the rollup build's) reads the copies: it then touches no Citus table and is
    planned by PostgreSQL alone, also on a cluster, where Citus refuses the split's correlated
    subqueries over the sharded history ("correlated subqueries are not supported when the FROM
    clause contains a CTE or subquery")."""

    schedule: str = T.schedule
    discount: str = T.discount
    history: str = HISTORY


STORED = SplitSources()


def copied_sources(prefix: str) -> SplitSources:
    """The temporary copies made by `copy_split_sources(prefix, ...)`."""
    return SplitSources(f"{prefix}_rates", f"{prefix}_discounts", f"{prefix}_history")


def copy_split_sources(prefix: str, participants: str | None = None) -> list[str]:
    """Statements that copy the split's sources into temporary tables (ON COMMIT DROP) named by
    `copied_sources(prefix)`: the rate schedule and the discounts whole (a few rows), the
    occupation history of the participants whose ids `participants` selects (SQL, e.g. "SELECT
    pid FROM rb_pa"; None: everyone's), indexed for held_sector's probe. Drop them with
    `drop_split_sources`."""
    c = copied_sources(prefix)
    only = "" if participants is None else f" WHERE h.participant_id IN ({participants})"
    return [
        f"CREATE TEMP TABLE {c.schedule} ON COMMIT DROP AS"  # noqa: S608
        f" SELECT effective_from, jkk_rate_bp, jkm_monthly, jht_rate_bp FROM {T.schedule}",
        f"CREATE TEMP TABLE {c.discount} ON COMMIT DROP AS"  # noqa: S608
        " SELECT first_month, last_month, sector, percent, programmes, excluded_payer_types"
        f" FROM {T.discount}",
        f"CREATE TEMP TABLE {c.history} ON COMMIT DROP AS"  # noqa: S608
        f" SELECT h.participant_id, h.until_month, h.sector FROM {HISTORY} h{only}",
        f"CREATE INDEX ON {c.history} (participant_id, until_month)",
        f"ANALYZE {c.history}",
    ]


def drop_split_sources(prefix: str) -> str:
    c = copied_sources(prefix)
    return f"DROP TABLE {c.schedule}, {c.discount}, {c.history}"


def held_sector(month: str, history_pid: str, sector: str, history: str = HISTORY) -> str:
    """The sector of the occupation held in `month` (rates.quote_contribution's sector_history):
    that of the earliest period of participant `history_pid` in `history` (SplitSources.history)
    ending after the month, else `sector` (the current occupation's). `history_pid` NULL: no
    history, `sector`."""
    if history_pid == "NULL":
        return sector  # (what the probe would give: no participant has the id NULL)
    return f"""COALESCE((SELECT h.sector FROM {history} h
                   WHERE h.participant_id = {history_pid} AND h.until_month > {month}
                   ORDER BY h.until_month LIMIT 1), {sector})"""  # noqa: S608


def has_history(participant_id: str, history: str = T.occupation_period) -> str:
    """`participant_id` if that participant ever changed occupation (OccupationPeriod, or a
    copy of `copy_split_sources`), else NULL: the key under which a programme split must read
    the history."""
    probe = f"SELECT 1 FROM {history} h WHERE h.participant_id = {participant_id}"  # noqa: S608
    return f"CASE WHEN EXISTS ({probe}) THEN {participant_id} END"


def programme_split(
    *,
    period_start: str,
    months: str,
    declared_income: str,
    jht: str,
    sector: str,
    payer_type: str,
    history_pid: str = "NULL",
    sources: SplitSources = STORED,
) -> str:
    """A subquery (one row: jkk, jkm, jht) of what `months` months from `period_start` cost per
    programme for a participant with this income, JHT choice and occupation sector, paid by
    `payer_type`: rates.quote_contribution's amounts summed over the months - the schedule in
    force in each month, the discounts of the month for the sector that do not exclude the
    payer type, rounded half up as there; each month's sector that of the occupation held in it
    (`held_sector`, `history_pid`: a participant id or NULL). NULLs when months < 1. Use as
    `CROSS JOIN LATERAL (<this>) sp` or `LEFT JOIN LATERAL (...) ON ...`. `sources`: the
    stored tables, or their temporary copies (SplitSources)."""
    s, d = sources.schedule, sources.discount
    held = held_sector("mm.month", history_pid, sector, sources.history)

    def discounted(amount: str, pct: str) -> str:
        rounded = _half_up(f"{amount} * (100 - {pct})", 100)
        return f"CASE WHEN {pct} IS NULL THEN {amount} ELSE {rounded} END"

    return f"""
    SELECT sum({discounted("b.jkk", "dc.jkk_pct")}) AS jkk,
           sum({discounted("b.jkm", "dc.jkm_pct")}) AS jkm,
           sum({discounted("b.jht", "dc.jht_pct")}) AS jht
    FROM generate_series(0, {months} - 1) g(i)
    CROSS JOIN LATERAL (SELECT ({period_start} + make_interval(months => g.i))::date AS month) mm
    CROSS JOIN LATERAL (
        SELECT s.jkk_rate_bp, s.jkm_monthly, s.jht_rate_bp FROM {s} s
        WHERE s.effective_from <= mm.month ORDER BY s.effective_from DESC LIMIT 1
    ) s
    CROSS JOIN LATERAL (
        SELECT {_half_up(f"{declared_income} * s.jkk_rate_bp", 10_000)} AS jkk,
               s.jkm_monthly::bigint AS jkm,
               CASE WHEN {jht} THEN {_half_up(f"{declared_income} * s.jht_rate_bp", 10_000)}
                    ELSE 0 END AS jht
    ) b
    CROSS JOIN LATERAL (
        SELECT max(x.percent) FILTER (WHERE 'JKK' = ANY(x.progs)) AS jkk_pct,
               max(x.percent) FILTER (WHERE 'JKM' = ANY(x.progs)) AS jkm_pct,
               max(x.percent) FILTER (WHERE 'JHT' = ANY(x.progs)) AS jht_pct
        FROM (SELECT rd.percent,
                     string_to_array(replace(rd.programmes, ' ', ''), ',') AS progs
              FROM {d} rd
              WHERE rd.first_month <= mm.month AND rd.last_month >= mm.month
                AND rd.sector IN ('', {held})
                AND NOT {payer_type} = ANY(
                    string_to_array(replace(rd.excluded_payer_types, ' ', ''), ','))) x
    ) dc
"""  # noqa: S608
