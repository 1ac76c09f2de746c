"""Target-vs-actual maths: pure functions, no database (tested at the edges)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

DAYS_PER_MONTH = 365.25 / 12
MAX_HORIZON_DAYS = 100 * 365


@dataclass(frozen=True)
class Projection:
    target: int | None
    active: int
    gap: int | None  # target - active; negative once the target is passed
    percent_of_target: float | None
    remaining_months: float  # from as_of to 31 December of the year
    required_monthly: int | None  # net growth a month needed to reach the target by year end
    run_rate: float | None  # net growth a month over the last 3 months
    projected_year_end: int | None
    reached_on: date | None  # the day the target is (or was) reached at the current rate
    status: str  # no_target, no_data, reached, on_track, behind


def remaining_months(as_of: date, year: int) -> float:
    return max(0, (date(year, 12, 31) - as_of).days) / DAYS_PER_MONTH


def run_rate(*, active_now: int, active_before: int | None, months: float) -> float | None:
    """Net growth a month between two observations `months` apart (None without both)."""
    if active_before is None or months <= 0:
        return None
    return (active_now - active_before) / months


def project(
    *,
    target: int | None,
    active: int,
    rate: float | None,
    as_of: date,
    year: int,
    has_data: bool = True,
) -> Projection:
    left = remaining_months(as_of, year)
    if target is None:
        return Projection(
            None,
            active,
            None,
            None,
            left,
            None,
            rate,
            _projected(active, rate, left),
            None,
            "no_target",
        )
    gap = target - active
    pct = round(active * 100 / target, 2) if target else None
    projected = _projected(active, rate, left)
    if not has_data:
        return Projection(
            target, active, gap, pct, left, _required(gap, left), rate, None, None, "no_data"
        )
    if gap <= 0:
        return Projection(target, active, gap, pct, left, 0, rate, projected, as_of, "reached")
    reached_on = None
    if rate is not None and rate > 0:
        days = math.ceil(gap / rate * DAYS_PER_MONTH)
        if days <= MAX_HORIZON_DAYS:  # beyond that, "not at the current rate"
            reached_on = as_of + timedelta(days=days)
    on_track = projected is not None and projected >= target
    return Projection(
        target,
        active,
        gap,
        pct,
        left,
        _required(gap, left),
        rate,
        projected,
        reached_on,
        "on_track" if on_track else "behind",
    )


def _required(gap: int, left: float) -> int | None:
    if gap <= 0:
        return 0
    if left <= 0:
        return None  # the year is over: no monthly rate can reach it any more
    return math.ceil(gap / left)


def _projected(active: int, rate: float | None, left: float) -> int | None:
    if rate is None:
        return None
    return max(0, round(active + rate * left))
