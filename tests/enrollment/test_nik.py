"""Every NIK rule of BPU_RULES.md, on the pure parser."""

from datetime import date

import pytest

from enrollment.nik import NikError, build_nik, parse_nik

TODAY = date(2026, 11, 25)


def code_of(value: object) -> str:
    with pytest.raises(NikError) as info:
        parse_nik(value, today=TODAY)  # type: ignore[arg-type]
    return info.value.code


def test_parses_a_man() -> None:
    parsed = parse_nik("3273051705900001", today=TODAY)
    assert parsed.province_code == "32"
    assert parsed.regency_code == "32.73"
    assert parsed.district_code == "32.73.05"
    assert parsed.birth_date == date(1990, 5, 17)
    assert parsed.sex == "M"
    assert parsed.serial == "0001"


def test_women_add_forty_to_the_day() -> None:
    parsed = parse_nik("3273055505900012", today=TODAY)
    assert parsed.sex == "F"
    assert parsed.birth_date == date(1990, 5, 15)


@pytest.mark.parametrize("value", ["", None])
def test_empty_is_nik_empty(value: object) -> None:
    assert code_of(value) == "nik_empty"


@pytest.mark.parametrize(
    "value",
    [
        "327305170590001",  # 15 digits
        "32730517059000011",  # 17 digits
        "3273 0517059000 1",  # spaces
        "3273-0517-0590-01",  # dashes
        "３２７３０５１７０５９０００１",  # full-width digits
        "٣٢٧٣٠٥١٧٠٥٩٠٠٠٠١",  # Arabic-Indic digits
        "32730517059000a1",
        " 3273051705900001",
    ],
)
def test_anything_but_16_ascii_digits_is_nik_format(value: str) -> None:
    assert code_of(value) == "nik_format"


@pytest.mark.parametrize(
    "value",
    [
        "0073051705900001",
        "2073051705900001",
        "3200051705900001",
        "3273001705900001",
        "9973051705900001",
    ],
)
def test_bad_region_codes(value: str) -> None:
    assert code_of(value) == "nik_region"


@pytest.mark.parametrize(
    "ddmmyy",
    ["000590", "320590", "720590", "170090", "171390", "310490", "290201", "290290", "710490"],
)
def test_impossible_dates(ddmmyy: str) -> None:
    assert code_of(f"327305{ddmmyy}0001") == "nik_birth_date"


def test_29_february_of_a_leap_year_is_valid() -> None:
    assert parse_nik("3273052902960001", today=TODAY).birth_date == date(1996, 2, 29)
    assert parse_nik("3273056902000001", today=TODAY).birth_date == date(2000, 2, 29)


def test_serial_0000_is_invalid() -> None:
    assert code_of("3273051705900000") == "nik_serial"


def test_century_puts_the_date_in_the_past() -> None:
    assert parse_nik("3273050101100001", today=TODAY).birth_date == date(2010, 1, 1)
    assert parse_nik("3273050101300001", today=TODAY).birth_date == date(1930, 1, 1)
    # later this year than today: last century
    assert parse_nik("3273051212260001", today=TODAY).birth_date == date(1926, 12, 12)
    assert parse_nik("3273052411260001", today=TODAY).birth_date == date(2026, 11, 24)


@pytest.mark.clock("2026-12-31T23:30:00Z")  # 1 January 2027, 06:30 in Jakarta
def test_without_a_date_the_century_is_decided_on_jakartas_day_not_the_hosts() -> None:
    """A baby born on 1 January 2027 registered at 06:30 WIB: on a UTC host the date is still
    31 December 2026, and `date.today()` put the birth in 1927."""
    assert parse_nik("3273050101270001").birth_date == date(2027, 1, 1)


def test_build_nik_is_the_inverse() -> None:
    nik = build_nik("327305", date(1985, 12, 31), "F", 42)
    assert nik == "3273057112850042"
    parsed = parse_nik(nik, today=TODAY)
    assert (parsed.birth_date, parsed.sex, parsed.serial) == (date(1985, 12, 31), "F", "0042")


def test_error_carries_a_message() -> None:
    with pytest.raises(NikError) as info:
        parse_nik("12", today=TODAY)
    assert "16" in str(info.value.message)
