"""KPJ (Kartu Peserta Jamsostek) participant numbers: 11 digits, the last a Luhn check digit.

A number must be unique, never reused, and **not guessable from another participant's number**:
a payment channel that knows one KPJ must not find its neighbours by counting (issue: a sequence
plus a Luhn digit let a channel token read 60 participants in 3 s). So the 10-digit base is a
keyed permutation of a PostgreSQL sequence value:

    base = F_k(n),  n = nextval(enrollment_kpj_seq),  F_k a bijection of [0, 10^10)

`F_k` is bpjsportal.core.fpe's 8-round balanced Feistel network over two 5-digit halves whose
round function is HMAC-SHA256 under `settings.KPJ_KEY` (a format-preserving permutation in the
style of NIST SP 800-38G's FF1/FF3, which use 10 and 8 rounds). A bijection of distinct
sequence values gives distinct bases, so new numbers never collide with each other, however
many processes draw them; without the key, one number says nothing about another. A rolled-back
registration burns its sequence value, so a number is never handed out twice.

Numbers written by other means stay valid: those issued before this scheme (the plain sequence,
1000000001, 1000000002, ...), and any loaded from elsewhere. The rare new number that equals one
of them is refused by the unique constraint and the registration draws another
(enrollment/services.py), so a number is never handed out twice. The key must never change once
numbers are issued (a new key maps later sequence values onto issued numbers: each would then
cost a retry). The development default is refused by `manage.py check --deploy`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from bpjsportal.core import fpe
from bpjsportal.core.fpe import luhn_check_digit

KPJ_SEQUENCE = "enrollment_kpj_seq"
_HALF = 10**5  # two 5-digit halves: 10^5 * 10^5 = 10^10 bases

__all__ = [
    "is_valid_kpj",
    "kpj_for",
    "luhn_check_digit",
    "next_kpj_number",
    "permute",
    "unpermute",
]


def is_valid_kpj(value: str) -> bool:
    return len(value) == 11 and fpe.luhn_valid(value)


def _key() -> bytes:
    key = str(getattr(settings, "KPJ_KEY", "") or "")
    if len(key) < 32:
        raise ValueError("KPJ_KEY must be a secret of at least 32 characters")
    return key.encode("utf-8")


def permute(value: int, key: bytes | None = None) -> int:
    """The keyed bijection of [0, 10^10) that turns a sequence value into a KPJ base."""
    if not 0 <= value < _HALF * _HALF:
        raise ValueError("a KPJ base has 10 digits")
    return fpe.permute(value, key=key or _key(), half=_HALF)


def unpermute(value: int, key: bytes | None = None) -> int:
    """The inverse of `permute` (tests prove the bijection; support can find a number's order)."""
    return fpe.unpermute(value, key=key or _key(), half=_HALF)


def kpj_for(sequence_value: int, key: bytes | None = None) -> str:
    base = f"{permute(sequence_value, key):010d}"
    return base + luhn_check_digit(base)


def next_kpj_numbers(n: int) -> list[str]:
    """`n` new KPJ numbers in one sequence round trip, in sequence order."""
    if n <= 0:
        return []
    key = _key()
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [KPJ_SEQUENCE, n])
        return [kpj_for(v, key) for v in sorted(int(v) for (v,) in cursor.fetchall())]


def next_kpj_number() -> str:
    return next_kpj_numbers(1)[0]
