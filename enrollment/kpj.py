"""KPJ (Kartu Peserta Jamsostek) participant numbers: 11 digits, the last a Luhn check digit.

The 10-digit base comes from a PostgreSQL sequence, so numbers are unique and never reused (a rolled
back registration burns its number; sequences do not go backwards).
"""

from __future__ import annotations

from django.db import connection

KPJ_SEQUENCE = "enrollment_kpj_seq"


def luhn_check_digit(digits: str) -> str:
    """The Luhn digit that makes `digits + digit` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:  # doubled: these positions are odd once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def is_valid_kpj(value: str) -> bool:
    if len(value) != 11 or not value.isascii() or not value.isdigit():
        return False
    return luhn_check_digit(value[:-1]) == value[-1]


def next_kpj_number() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [KPJ_SEQUENCE])
        (base,) = cursor.fetchone()
    digits = f"{base:010d}"
    return digits + luhn_check_digit(digits)
