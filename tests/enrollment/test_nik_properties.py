"""Properties of the NIK parser (hypothesis, bounded): build_nik and parse_nik are inverses over
every valid region prefix, birth date within a century and serial; and no input whatsoever makes
parse_nik raise anything but NikError."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrollment.nik import PROVINCE_CODES, NikError, ParsedNik, build_nik, parse_nik

TODAY = date(2026, 11, 25)
BOUNDED = settings(
    max_examples=300, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip

two_digits_not_00 = st.integers(1, 99).map(lambda n: f"{n:02d}")
prefixes = st.builds(
    lambda p, r, d: p + r + d, st.sampled_from(sorted(PROVINCE_CODES)), two_digits_not_00,
    two_digits_not_00,
)  # fmt: skip
# The century is not in a NIK: a date is read as the latest one not after `today`, so the
# round trip holds for ages 0-99 (the portal registers 15-65).
birth_dates = st.dates(TODAY.replace(year=TODAY.year - 99) + timedelta(days=1), TODAY)


@BOUNDED
@given(
    prefix=prefixes, born=birth_dates, sex=st.sampled_from(["M", "F"]), serial=st.integers(1, 9999)
)
def test_build_then_parse_gives_back_every_part(
    prefix: str, born: date, sex: str, serial: int
) -> None:
    nik = build_nik(prefix, born, sex, serial)
    parsed = parse_nik(nik, today=TODAY)
    assert parsed.nik == nik and len(nik) == 16
    assert parsed.prefix6 == prefix
    assert parsed.district_code == f"{prefix[:2]}.{prefix[2:4]}.{prefix[4:]}"
    assert parsed.birth_date == born and parsed.sex == sex and int(parsed.serial) == serial


def _parse_or_error(value: object) -> ParsedNik | NikError:
    try:
        return parse_nik(value, today=TODAY)  # type: ignore[arg-type]
    except NikError as exc:
        assert exc.code in {"nik_empty", "nik_format", "nik_region", "nik_birth_date", "nik_serial"}
        assert str(exc.message)
        return exc


@BOUNDED
@given(
    value=st.one_of(st.text(max_size=40), st.from_regex(r"\A[0-9]{16}\Z"), st.none(), st.integers())
)
def test_any_input_parses_or_raises_nik_error_only(value: object) -> None:
    result = _parse_or_error(value)
    if isinstance(result, ParsedNik):
        assert result.birth_date <= TODAY
        assert build_nik(result.prefix6, result.birth_date, result.sex, int(result.serial)) == value


@BOUNDED
@given(nik=st.from_regex(r"\A[1-9][0-9]{15}\Z"), position=st.integers(0, 15), junk=st.sampled_from(
    [" ", "-", "\u0661", "\uff11", "a", "\x00"]))  # fmt: skip
def test_one_foreign_character_is_always_a_format_error(nik: str, position: int, junk: str) -> None:
    broken = nik[:position] + junk + nik[position + 1 :]
    result = _parse_or_error(broken)
    assert isinstance(result, NikError) and result.code == "nik_format"
