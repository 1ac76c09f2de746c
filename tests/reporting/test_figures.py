"""Every figure on a hand-computed fixture: three workers in 2025, rollups built by the real
SQL, figures read by the dashboard's selector.

P1 registered 10 Jan, pays Jan-Mar on 12 Jan, Apr-May on 10 May.
P2 registered 20 Jan, never pays until lapsed (16 Apr), pays 1 month on 20 May (reactivation).
P3 (Jawa Timur, tukang, female) registered 5 Feb, pays Feb on 5 Feb.
Rule (docs/contributions.md): first unpaid month N; lapsed from the 16th of N + 3 months.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from reporting import selectors
from reporting.rollups import rebuild_rollups
from reporting.selectors import Filters
from tests.conftest import nik_for

MONTHLY = 16_800  # income level Rp 1,000,000: JKK 10,000 + JKM 6,800 (no PP 50/2025 in 2025)


@pytest.fixture
def three(participant_on: Any, pay_on: Any, agent: Any) -> dict[str, Any]:
    p1 = participant_on(date(2025, 1, 10), registered_by=agent.staff)
    p2 = participant_on(date(2025, 1, 20))
    p3 = participant_on(
        date(2025, 2, 5),
        nik=nik_for(date(1992, 3, 4), "F", 7, prefix="357801"),
        birth_date=date(1992, 3, 4),
        sex="F",
        village="35.78.01.1001",
        occupation="tukang",
    )
    pay_on(p1, date(2025, 1, 12), months=3, collected_by=agent.staff)
    pay_on(p3, date(2025, 2, 5))
    pay_on(p1, date(2025, 5, 10), months=2)
    pay_on(p2, date(2025, 5, 20))
    rebuild_rollups(start=date(2025, 1, 1), end=date(2025, 5, 31))
    return {"p1": p1, "p2": p2, "p3": p3}


def figures(day: date, **kw: Any) -> selectors.Progress:
    return selectors.progress(Filters(year=day.year, as_of=day, **kw))


def test_end_of_march(three: Any) -> None:
    p = figures(date(2025, 3, 31))
    assert (p.registered, p.active, p.grace, p.lapsed) == (3, 1, 2, 0)
    assert p.new_registrations == 3 and p.lapses == 0 and p.reactivations == 0
    assert p.collections["total"] == 4 * MONTHLY
    assert p.collections["JKK"] == 40_000 and p.collections["JKM"] == 27_200
    assert p.collections["JHT"] == 0 and p.collections["other"] == 0
    assert p.active_rate == pytest.approx(1 / 3, abs=1e-4)


def test_lapse_is_counted_on_the_16th_not_the_15th(three: Any) -> None:
    day15 = figures(date(2025, 4, 15))
    assert (day15.active, day15.grace, day15.lapsed, day15.lapses) == (0, 3, 0, 0)
    day16 = figures(date(2025, 4, 16))
    assert (day16.active, day16.grace, day16.lapsed, day16.lapses) == (0, 2, 1, 1)


def test_end_of_may_after_reactivation(three: Any) -> None:
    p = figures(date(2025, 5, 31))
    assert (p.registered, p.active, p.grace, p.lapsed) == (3, 2, 1, 0)
    assert p.reactivations == 1 and p.lapses == 1 and p.payments == 4
    assert p.collections == {
        "JKK": 70_000,
        "JKM": 47_600,
        "JHT": 0,
        "other": 0,
        "total": 7 * MONTHLY,
    }


def test_before_any_registration_everything_is_zero(three: Any) -> None:
    p = figures(date(2025, 1, 9))
    assert (p.registered, p.active, p.collections["total"]) == (0, 0, 0)


def test_breakdowns(three: Any) -> None:
    f = Filters(year=2025, as_of=date(2025, 5, 31))
    prov = {r["key"]: r for r in selectors.breakdown(f, "province")}
    assert (prov["32"]["registered"], prov["32"]["active"]) == (2, 2)
    assert (prov["35"]["registered"], prov["35"]["grace"], prov["35"]["label"]) == (
        1,
        1,
        "Jawa Timur",
    )
    occ = {r["key"]: r["registered"] for r in selectors.breakdown(f, "occupation")}
    assert occ == {"petani": 2, "tukang": 1}
    sex = {r["key"]: r["registered"] for r in selectors.breakdown(f, "sex")}
    assert sex == {"M": 2, "F": 1}
    age = {r["key"]: r["registered"] for r in selectors.breakdown(f, "age_band")}
    assert age == {"35-44": 2, "25-34": 1}  # born 1990-05-17 (35 on 31 May 2025), 1992 (33)
    assert {r["key"] for r in selectors.breakdown(f, "channel")} == {"agent"}
    regency = selectors.breakdown(Filters(year=2025, as_of=f.as_of, province="32"), "regency")
    assert [(r["key"], r["registered"]) for r in regency] == [("32.73", 2)]


def test_age_band_moves_on_the_birthday(three: Any) -> None:
    f = Filters(year=2025, as_of=date(2025, 5, 16))
    age = {r["key"]: r["registered"] for r in selectors.breakdown(f, "age_band")}
    assert age == {"25-34": 3}  # the 1990-05-17 births are 34 only from 17 May


def test_filters_cut_every_figure(three: Any) -> None:
    p = figures(date(2025, 5, 31), province="35")
    assert (p.registered, p.active, p.grace, p.collections["total"]) == (1, 0, 1, MONTHLY)
    p = figures(date(2025, 5, 31), occupation="petani")
    assert (p.registered, p.active, p.reactivations) == (2, 2, 1)


def test_league_table(three: Any, agent: Any) -> None:
    rows = selectors.league(
        Filters(year=2025, as_of=date(2025, 5, 31)),
        selectors.Scope(dashboard=True, league_all=True),
    )
    assert len(rows) == 1
    row = rows[0]
    assert (row["username"], row["registered"], row["active"], row["new_registrations"]) == (
        agent.username,
        1,
        1,
        1,
    )
    assert row["collected_total"] == 3 * MONTHLY  # only the payment the agent collected


def test_target_gap_and_series(three: Any) -> None:
    from reporting.targets import save_target

    save_target(year=2025, active_target=14, starting_point=2, milestones={6: 5})
    p = figures(date(2025, 5, 31))
    assert p.target == 14 and p.starting_point == 2
    assert p.projection["gap"] == 12
    assert [r["target"] for r in p.series][:6] == [3, 4, 5, 6, 7, 5]
    assert [r["actual"] for r in p.series][:5] == [1, 2, 1, 0, 2]  # P3 paid Feb only
    # run rate: active 31 May (2) vs 28 Feb (2): no net growth, so no date of reaching
    assert p.projection["run_rate"] == 0
    assert p.projection["reached_on"] is None and p.projection["projected_year_end"] == 2
    april = figures(date(2025, 4, 30))  # 0 active vs 1 on 31 Jan: negative growth
    assert april.projection["run_rate"] < 0 and april.projection["status"] == "behind"


def test_province_quota_is_the_target_of_the_province_cut(three: Any) -> None:
    from reporting.targets import save_target

    save_target(year=2025, active_target=100, breakdowns=[("province", "35", 7)])
    assert figures(date(2025, 5, 31), province="35").target == 7
    assert figures(date(2025, 5, 31), province="32").target is None
    rows = selectors.breakdown(Filters(year=2025, as_of=date(2025, 5, 31)), "province")
    assert rows[0]["key"] == "35" and rows[0]["gap"] == 7  # sorted by gap


def test_no_rollups_means_no_data(db: Any) -> None:
    p = figures(date(2025, 5, 31))
    assert p.data_day is None and p.registered == 0
    assert p.projection["status"] in ("no_data", "no_target")
