"""The quote: anchor amounts, JHT, PP 50/2025 discount months mixed with full months."""

from __future__ import annotations

from datetime import date

import pytest

from contributions.rates import QuoteError, quote_contribution

pytestmark = pytest.mark.usefixtures("refdata")


def quote(
    months: int, first: date, sector: str = "other", jht: bool = False, income: int = 1_000_000
):
    programmes = ["JKK", "JKM", "JHT"] if jht else ["JKK", "JKM"]
    return quote_contribution(
        declared_income=income,
        programmes=programmes,
        months=months,
        first_month=first,
        sector=sector,
    )


def test_anchor_minimum_package_before_the_discount() -> None:
    q = quote(1, date(2025, 12, 1))
    assert q.total == 16_800 and q.per_programme == {"JKK": 10_000, "JKM": 6_800}
    assert quote(1, date(2025, 12, 1), jht=True).total == 36_800


def test_discount_halves_jkk_and_jkm_not_jht() -> None:
    q = quote(1, date(2026, 4, 1), jht=True)
    assert q.per_programme == {"JKK": 5_000, "JKM": 3_400, "JHT": 20_000}


def test_other_sector_months_mix_full_march_and_discounted_april() -> None:
    q = quote(2, date(2026, 3, 1))
    assert [m.total for m in q.months] == [16_800, 8_400]
    assert q.total == 25_200


def test_other_sector_discount_ends_after_december_2026() -> None:
    q = quote(3, date(2026, 11, 1))
    assert [m.total for m in q.months] == [8_400, 8_400, 16_800]


def test_transport_discount_runs_january_2026_to_march_2027() -> None:
    assert quote(1, date(2026, 1, 1), sector="transport").total == 8_400
    assert quote(1, date(2026, 1, 1), sector="other").total == 16_800
    q = quote(2, date(2027, 3, 1), sector="transport")
    assert [m.total for m in q.months] == [8_400, 16_800]


def test_twelve_months_across_a_year_end() -> None:
    q = quote(12, date(2026, 6, 1))
    assert q.total == 7 * 8_400 + 5 * 16_800
    assert q.months[-1].month == date(2027, 5, 1)


def test_higher_income_level() -> None:
    assert quote(1, date(2025, 1, 1), income=20_700_000).total == 207_000 + 6_800


@pytest.mark.parametrize("months", [0, 13, -1])
def test_months_out_of_range(months: int) -> None:
    with pytest.raises(QuoteError) as err:
        quote(months, date(2026, 1, 1))
    assert err.value.code == "months_out_of_range"


def test_income_not_a_level_names_the_nearest() -> None:
    with pytest.raises(QuoteError) as err:
        quote(1, date(2026, 1, 1), income=1_500_000)
    assert err.value.code == "income_not_level"
    assert err.value.nearest == [1_400_000, 1_600_000]
