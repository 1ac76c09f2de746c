"""NIK (Nomor Induk Kependudukan) parsing — pure, no database.

Layout `PP RR DD DDMMYY SSSS` (UU 24/2013 on civil administration, Permendagri 72/2019; summarised
in shared/domain/BPU_RULES.md): province, regency/city and district codes of issue, birth date with
40 added to the day for women, and a serial from 0001. There is no check digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Kemendagri province codes (Kepmendagri 300.2.2-2138/2025).
PROVINCE_CODES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "16",
        "17",
        "18",
        "19",
        "21",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "51",
        "52",
        "53",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "72",
        "73",
        "74",
        "75",
        "76",
        "81",
        "82",
        "91",
        "92",
        "93",
        "94",
        "95",
        "96",
    ]
)
_ASCII_16 = re.compile(r"[0-9]{16}")

MESSAGES = {
    "nik_empty": _("Enter the NIK."),
    "nik_format": _("The NIK must be exactly 16 digits (0-9), without spaces or dashes."),
    "nik_region": _("The NIK's region code is not valid (province, regency or district code)."),
    "nik_birth_date": _("The NIK's birth date (digits 7-12) is not a real date."),
    "nik_serial": _("The NIK's serial number (last 4 digits) cannot be 0000."),
}


class NikError(ValueError):
    """The NIK breaks a rule; `code` is machine-readable, `message` is for people."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.message = MESSAGES[code]
        super().__init__(f"{code}: {self.message}")


@dataclass(frozen=True, slots=True)
class ParsedNik:
    nik: str
    province_code: str  # "32"
    regency_code: str  # "32.73"
    district_code: str  # "32.73.05"
    birth_date: date
    sex: str  # "M" or "F"
    serial: str  # "0012"

    @property
    def prefix6(self) -> str:
        return self.nik[:6]


def parse_nik(value: str, *, today: date | None = None) -> ParsedNik:
    """Parse a NIK or raise NikError with one of the codes in MESSAGES.

    The century is not in the NIK: the date is put in the century that makes it not in the future
    relative to `today` (so an age is 0-99 years).
    """
    if value is None or value == "":
        raise NikError("nik_empty")
    # fullmatch on an ASCII class: rejects spaces, dashes, full-width and other Unicode digits.
    if not isinstance(value, str) or not _ASCII_16.fullmatch(value):
        raise NikError("nik_format")
    province, regency, district = value[0:2], value[2:4], value[4:6]
    if province not in PROVINCE_CODES or regency == "00" or district == "00":
        raise NikError("nik_region")
    day, month, yy = int(value[6:8]), int(value[8:10]), int(value[10:12])
    sex = "M"
    if day > 40:
        day -= 40
        sex = "F"
    today = today or timezone.localdate()  # the portal's day (Asia/Jakarta), not the host's
    year = 2000 + yy
    if year > today.year:
        year -= 100
    try:
        born = date(year, month, day)
    except ValueError:
        # 29 Feb of "00": 2000 was leap, 1900 was not; try the other century once.
        born = _other_century(year, month, day, today)
    if born > today:
        born = _other_century(born.year, month, day, today, step=-100)
    serial = value[12:16]
    if serial == "0000":
        raise NikError("nik_serial")
    return ParsedNik(
        nik=value,
        province_code=province,
        regency_code=f"{province}.{regency}",
        district_code=f"{province}.{regency}.{district}",
        birth_date=born,
        sex=sex,
        serial=serial,
    )


def _other_century(year: int, month: int, day: int, today: date, step: int = -100) -> date:
    try:
        candidate = date(year + step, month, day)
    except ValueError as exc:
        raise NikError("nik_birth_date") from exc
    if candidate > today:
        raise NikError("nik_birth_date")
    return candidate


def build_nik(prefix6: str, birth_date: date, sex: str, serial: int) -> str:
    """Compose a NIK (for demo data, tests and benchmarks); the inverse of parse_nik."""
    day = birth_date.day + (40 if sex == "F" else 0)
    return f"{prefix6}{day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}{serial:04d}"
