"""Coverage status rules at the edges: due day, month ends, leap years, year ends, settings -
on the seeded holiday calendar (2026: SKB 3 Menteri 1497/2/5 of 2025), so the due dates of
February, May and August 2026 move (contributions/due_dates.py), and with holidays an admin adds.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from contributions.coverage import (
    arrears_months,
    due_date,
    first_month_to_pay,
    lapse_date,
    lapse_threshold,
    months_due_now,
    status_for,
)
from contributions.due_dates import month_due_on
from contributions.models import Holiday
from contributions.rates import add_months

JAN = date(2026, 1, 1)
pytestmark = pytest.mark.django_db  # the calendar is data


def status(paid_through: date | None, as_of: date, start: date = JAN) -> str:
    return status_for(paid_through=paid_through, start_month=start, as_of=as_of)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (date(2026, 1, 1), "active"),  # first day of the paid month
        (date(2026, 1, 31), "active"),  # month end of the paid month
        (date(2026, 2, 1), "grace"),  # next month starts unpaid: due soon
        (date(2026, 2, 15), "grace"),  # the due day itself, not yet overdue
        (date(2026, 2, 16), "grace"),  # 1 month overdue
        (date(2026, 4, 16), "grace"),  # 3 months overdue: still within grace
        (date(2026, 5, 15), "grace"),  # due day of the 4th unpaid month (cuti bersama): grace
        (date(2026, 5, 18), "grace"),  # ... its due date: the next working day (after Sat-Sun)
        (date(2026, 5, 19), "lapsed"),  # 4 months overdue: lapsed
        (date(2027, 1, 1), "lapsed"),
    ],
)
def test_status_from_paid_through_january(as_of: date, expected: str) -> None:
    assert status(JAN, as_of) == expected


def test_lapse_date_is_the_day_after_the_due_date_of_the_fourth_unpaid_month() -> None:
    assert lapse_date(date(2026, 1, 1)) == date(2026, 4, 16)  # 15 April 2026: a Wednesday
    # 15 May 2026 is cuti bersama (a Friday), then a weekend: due Monday 18 May
    assert lapse_date(date(2026, 2, 1)) == date(2026, 5, 19)


def test_year_end_rollover() -> None:
    paid = date(2026, 11, 1)  # next unpaid December 2026
    assert status(paid, date(2026, 12, 31)) == "grace"
    assert status(paid, date(2027, 3, 15)) == "grace"
    assert status(paid, date(2027, 3, 16)) == "lapsed"
    assert lapse_date(date(2026, 12, 1)) == date(2027, 3, 16)


def test_leap_year_february_end() -> None:
    paid = date(2028, 2, 1)  # February of a leap year
    assert status(paid, date(2028, 2, 29)) == "active"
    assert status(paid, date(2028, 3, 1)) == "grace"
    # February 2027 (not a leap year) ends on the 28th
    assert status(date(2027, 2, 1), date(2027, 2, 28)) == "active"
    assert status(date(2027, 2, 1), date(2027, 3, 1)) == "grace"


def test_paid_in_advance_is_active_with_no_arrears() -> None:
    assert status(date(2026, 12, 1), date(2026, 3, 20)) == "active"
    assert arrears_months(date(2026, 12, 1), JAN, date(2026, 3, 20)) == 0
    assert (
        months_due_now(paid_through=date(2026, 12, 1), start_month=JAN, as_of=date(2026, 3, 20))
        == 0
    )


def test_arrears_count_only_months_past_their_due_day() -> None:
    # 15 February 2026 is a Sunday, the 16th cuti bersama, the 17th Imlek: due Wednesday 18th
    assert arrears_months(JAN, JAN, date(2026, 2, 15)) == 0
    assert arrears_months(JAN, JAN, date(2026, 2, 18)) == 0
    assert arrears_months(JAN, JAN, date(2026, 2, 19)) == 1
    assert arrears_months(JAN, JAN, date(2026, 3, 31)) == 2


def test_never_paid_is_grace_from_registration_then_lapses() -> None:
    start = date(2026, 2, 1)  # registered in February 2026
    assert status(None, date(2026, 2, 20), start) == "grace"
    assert status(None, date(2026, 5, 18), start) == "grace"
    assert status(None, date(2026, 5, 19), start) == "lapsed"


def test_payment_starts_at_first_unpaid_month_in_grace() -> None:
    as_of = date(2026, 4, 10)
    assert first_month_to_pay(paid_through=JAN, start_month=JAN, as_of=as_of) == date(2026, 2, 1)
    # arrears Feb + Mar + the current April
    assert months_due_now(paid_through=JAN, start_month=JAN, as_of=as_of) == 3


def test_lapsed_payment_starts_at_current_month_no_back_cover() -> None:
    as_of = date(2026, 8, 3)
    assert status(JAN, as_of) == "lapsed"
    assert first_month_to_pay(paid_through=JAN, start_month=JAN, as_of=as_of) == date(2026, 8, 1)
    assert months_due_now(paid_through=JAN, start_month=JAN, as_of=as_of) == 1


def test_lapse_threshold_matches_status_rule() -> None:
    for day in (date(2026, 5, 15), date(2026, 5, 16), date(2028, 2, 29), date(2026, 12, 31)):
        threshold = lapse_threshold(day)
        for offset in range(-5, 5):
            paid = add_months(threshold, offset)
            lapsed = status(paid, day, start=date(2020, 1, 1)) == "lapsed"
            assert lapsed == (add_months(paid, 1) <= threshold)


def test_due_day_and_grace_come_from_settings(settings: pytest.FixtureRequest) -> None:
    settings.BPU_DUE_DAY = 10  # type: ignore[attr-defined]
    settings.BPU_GRACE_MONTHS = 1  # type: ignore[attr-defined]
    assert status(JAN, date(2026, 2, 10)) == "grace"
    assert status(JAN, date(2026, 3, 10)) == "grace"
    assert status(JAN, date(2026, 3, 11)) == "lapsed"


def test_due_day_out_of_range_is_a_configuration_error(settings: pytest.FixtureRequest) -> None:
    settings.BPU_DUE_DAY = 31  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured):
        status(JAN, date(2026, 2, 1))


def test_a_due_day_on_a_holiday_moves_to_the_next_working_day() -> None:
    # 15 August 2026 Saturday, 16th Sunday, 17th Proklamasi: due Tuesday 18 August
    assert due_date(date(2026, 8, 1)) == date(2026, 8, 18)
    assert status(date(2026, 7, 1), date(2026, 8, 18)) == "grace"
    assert arrears_months(date(2026, 7, 1), JAN, date(2026, 8, 18)) == 0
    assert arrears_months(date(2026, 7, 1), JAN, date(2026, 8, 19)) == 1
    assert lapse_date(date(2026, 5, 1)) == date(2026, 8, 19)
    # a working 15th stays: 15 April 2026, a Wednesday
    assert due_date(date(2026, 4, 1)) == date(2026, 4, 15)


def test_weekends_move_the_due_date_only_when_the_setting_says_so(settings: Any) -> None:
    # 15 November 2026 is a Sunday and no holiday
    assert due_date(date(2026, 11, 1)) == date(2026, 11, 16)
    settings.BPU_DUE_SKIPS_WEEKENDS = False
    assert due_date(date(2026, 11, 1)) == date(2026, 11, 15)
    assert due_date(date(2026, 8, 1)) == date(2026, 8, 15)  # a Saturday, now a working day
    # a holiday on the 15th still moves it: 15 May 2026, cuti bersama
    assert due_date(date(2026, 5, 1)) == date(2026, 5, 16)


def test_a_holiday_added_in_the_admin_moves_the_due_date_at_once() -> None:
    """An amended decree: the day is added as data (the cache of this process is cleared by the
    save; the lapse day and the arrears follow)."""
    assert due_date(date(2027, 4, 1)) == date(2027, 4, 15)  # a Thursday
    Holiday.objects.create(day=date(2027, 4, 15), name="Tambahan", kind="other", source="test")
    assert due_date(date(2027, 4, 1)) == date(2027, 4, 16)
    assert lapse_date(date(2027, 1, 1)) == date(2027, 4, 17)
    Holiday.objects.filter(day=date(2027, 4, 15)).delete()
    assert due_date(date(2027, 4, 1)) == date(2027, 4, 15)


def test_a_late_due_day_may_fall_in_the_next_month(settings: Any) -> None:
    """BPU_DUE_DAY 28: 28 February 2026 is a Saturday, so February is due Monday 2 March; on
    1-2 March February is not yet overdue, on the 3rd it is."""
    settings.BPU_DUE_DAY = 28
    assert due_date(date(2026, 2, 1)) == date(2026, 3, 2)
    assert month_due_on(date(2026, 3, 2)) == date(2026, 2, 1)
    assert month_due_on(date(2026, 3, 1)) is None
    assert arrears_months(JAN, JAN, date(2026, 3, 2)) == 0
    assert arrears_months(JAN, JAN, date(2026, 3, 3)) == 1
