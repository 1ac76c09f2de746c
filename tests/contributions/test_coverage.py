"""Coverage status rules at the edges: due day, month ends, leap years, year ends, settings."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ImproperlyConfigured

from contributions.coverage import (
    arrears_months,
    first_month_to_pay,
    lapse_date,
    lapse_threshold,
    months_due_now,
    status_for,
)
from contributions.rates import add_months

JAN = date(2026, 1, 1)


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
        (date(2026, 5, 15), "grace"),  # due day of the 4th unpaid month: still grace
        (date(2026, 5, 16), "lapsed"),  # 4 months overdue: lapsed
        (date(2027, 1, 1), "lapsed"),
    ],
)
def test_status_from_paid_through_january(as_of: date, expected: str) -> None:
    assert status(JAN, as_of) == expected


def test_lapse_date_is_the_day_after_the_due_day_of_the_fourth_unpaid_month() -> None:
    assert lapse_date(date(2026, 2, 1)) == date(2026, 5, 16)


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
    assert arrears_months(JAN, JAN, date(2026, 2, 15)) == 0
    assert arrears_months(JAN, JAN, date(2026, 2, 16)) == 1
    assert arrears_months(JAN, JAN, date(2026, 3, 31)) == 2


def test_never_paid_is_grace_from_registration_then_lapses() -> None:
    start = date(2026, 2, 1)  # registered in February 2026
    assert status(None, date(2026, 2, 20), start) == "grace"
    assert status(None, date(2026, 5, 15), start) == "grace"
    assert status(None, date(2026, 5, 16), start) == "lapsed"


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
