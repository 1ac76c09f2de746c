"""Target-vs-actual maths at the edges: no data, target reached, negative growth, year over."""

from __future__ import annotations

from datetime import date

import pytest

from reporting import projection
from reporting.targets import target_path


def test_gap_percent_required_and_projection() -> None:
    # 30 June: 184 days left = 6.045 months; gap 600; required ceil(600 / 6.045) = 100.
    p = projection.project(target=1000, active=400, rate=120.0, as_of=date(2024, 6, 30), year=2024)
    assert p.gap == 600 and p.percent_of_target == 40.0
    assert p.remaining_months == pytest.approx(184 / (365.25 / 12))
    assert p.required_monthly == 100
    assert p.projected_year_end == round(400 + 120 * 184 / (365.25 / 12))  # 1125
    assert p.status == "on_track"
    # 600 / 120 = 5 months = 152.19 days -> 153 days after 30 June
    assert p.reached_on == date(2024, 11, 30)


def test_target_already_reached() -> None:
    p = projection.project(target=1000, active=1200, rate=10.0, as_of=date(2024, 3, 1), year=2024)
    assert p.status == "reached" and p.gap == -200 and p.required_monthly == 0
    assert p.reached_on == date(2024, 3, 1) and p.percent_of_target == 120.0


def test_negative_growth_never_reaches_and_projection_falls() -> None:
    p = projection.project(target=1000, active=800, rate=-50.0, as_of=date(2024, 9, 30), year=2024)
    assert p.status == "behind" and p.reached_on is None
    assert p.projected_year_end == round(800 - 50 * 92 / (365.25 / 12))


def test_negative_growth_projection_never_below_zero() -> None:
    p = projection.project(target=1000, active=10, rate=-500.0, as_of=date(2024, 1, 1), year=2024)
    assert p.projected_year_end == 0


def test_no_data_yet() -> None:
    p = projection.project(
        target=1000, active=0, rate=None, as_of=date(2024, 1, 1), year=2024, has_data=False
    )
    assert p.status == "no_data" and p.projected_year_end is None and p.reached_on is None
    assert p.run_rate is None


def test_zero_growth_has_no_reach_date() -> None:
    p = projection.project(target=1000, active=500, rate=0.0, as_of=date(2024, 6, 1), year=2024)
    assert p.reached_on is None and p.projected_year_end == 500 and p.status == "behind"


def test_year_over_and_short_needs_no_monthly_rate() -> None:
    p = projection.project(target=1000, active=900, rate=5.0, as_of=date(2024, 12, 31), year=2024)
    assert p.remaining_months == 0 and p.required_monthly is None


def test_no_target() -> None:
    p = projection.project(target=None, active=5, rate=1.0, as_of=date(2024, 6, 1), year=2024)
    assert p.status == "no_target" and p.gap is None


def test_run_rate() -> None:
    assert projection.run_rate(active_now=130, active_before=100, months=3) == 10
    assert projection.run_rate(active_now=70, active_before=100, months=3) == -10
    assert projection.run_rate(active_now=70, active_before=None, months=3) is None
    assert projection.run_rate(active_now=70, active_before=60, months=0) is None


def test_straight_path_and_milestones() -> None:
    path = target_path(active_target=10_000_000, starting_point=9_190_000, milestones={})
    assert path[0] == 9_257_500 and path[5] == 9_595_000 and path[11] == 10_000_000
    with_ms = target_path(active_target=1200, starting_point=0, milestones={3: 50})
    assert with_ms[:4] == [100, 200, 50, 400] and with_ms[11] == 1200
