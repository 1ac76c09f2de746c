"""What the rollups are: their dimensions, flows and figures, the local day, the build lock and
the ledger marks, and the province rows derived from the daily rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.db import connection
from django.utils import timezone

from contributions import coverage as rules
from contributions.rules_sql import T

AGE_BANDS = ("15-24", "25-34", "35-44", "45-54", "55+")
DIMS = ("province_id", "regency_id", "occupation_id", "channel", "partner_id")
FLOWS = (
    "new_registrations",
    "reactivations",
    "lapses",
    "payments",
    "collected_jkk",
    "collected_jkm",
    "collected_jht",
    "collected_other",
    "collected_total",
)

PROVINCE_DIMS = ("province_id", "occupation_id", "channel", "partner_id")
FIGURES = ("registered", "active", "grace", "lapsed", *FLOWS, *(f"ytd_{f}" for f in FLOWS))


def province_rollup_sql() -> str:
    """DailyRollup without the regency (reporting.models.ProvinceRollup) for the days
    %(first)s..%(last)s: run after those days' DailyRollup rows are written, in the same
    transaction, so the two tables always hold the same day."""
    dims = ", ".join(PROVINCE_DIMS)
    figures = ", ".join(FIGURES)
    sums = ", ".join(f"sum({f})" for f in FIGURES)
    return f"""
INSERT INTO reporting_provincerollup (day, {dims}, {figures})
SELECT day, {dims}, {sums} FROM reporting_dailyrollup
WHERE day BETWEEN %(first)s AND %(last)s
GROUP BY day, {dims}
"""  # noqa: S608


def derive_province_rollup(cursor: Any, first: date, last: date) -> None:
    """Replace the ProvinceRollup rows of first..last with the sums of their DailyRollup rows."""
    cursor.execute(
        "DELETE FROM reporting_provincerollup WHERE day BETWEEN %s AND %s", [first, last]
    )
    cursor.execute(province_rollup_sql(), {"first": first, "last": last})


LOCK_KEY = 5_050_505  # pg advisory lock: one rollup build or refresh at a time
DEMO_KEYS = ("province_id", "occupation_id", "partner_id", "sex", "age_band")


def db_clock(cursor: Any) -> datetime:
    """The database's clock now (clock_timestamp()), read first and bound into the statements
    that stamp RollupDay.built_at: Citus refuses a volatile function in the SET of an upsert or
    update of its tables (RollupDay is a reference table on a cluster)."""
    cursor.execute("SELECT clock_timestamp()")
    return cursor.fetchall()[0][0]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The local day as [start, end) aware datetimes."""
    start = timezone.make_aware(datetime.combine(day, dtime.min))
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), dtime.min))


def day_params(day: date) -> dict[str, Any]:
    start, end = day_bounds(day)
    prev = day - timedelta(days=1)
    return {
        "day": day,
        "start": start,
        "end": end,
        "tz": timezone.get_current_timezone_name(),
        "month_d": rules.month_start(day),
        "thr_d": rules.lapse_threshold(day),
        "month_p": rules.month_start(prev),
        "thr_p": rules.lapse_threshold(prev),
        "prev": prev,
        "same_year": prev.year == day.year,
    }


@dataclass
class BuildResult:
    days: int
    rows: int
    seconds: float


def marks() -> tuple[int, int]:
    """The ledger and participant id marks a build reads up to."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE((SELECT max(id) FROM {T.ledger}), 0),"  # noqa: S608
            f" COALESCE((SELECT max(id) FROM {T.participant}), 0)"
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
