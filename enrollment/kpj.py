"""KPJ (Kartu Peserta Jamsostek) participant numbers: 11 digits, the last a Luhn check digit.

A number must be unique, never reused, and **not guessable from another participant's number**:
a payment channel that knows one KPJ must not find its neighbours by counting (issue: a sequence
plus a Luhn digit let a channel token read 60 participants in 3 s). So the 10-digit base is a
keyed permutation of a PostgreSQL sequence value:

    base = F_k(n),  n = nextval(enrollment_kpj_seq),  F_k a bijection of [0, 10^10)

`F_k` is an 8-round balanced Feistel network over two 5-digit halves whose round function is
HMAC-SHA256 under `settings.KPJ_KEY` (a format-preserving permutation in the style of NIST
SP 800-38G's FF1/FF3, which use 10 and 8 rounds). A bijection of distinct sequence values gives
distinct bases, so new numbers never collide with each other, however many processes draw them;
without the key, one number says nothing about another. A rolled-back registration burns its
sequence value, so a number is never handed out twice.

Numbers written by other means stay valid: those issued before this scheme (the plain sequence,
1000000001, 1000000002, ...), and any loaded from elsewhere. The rare new number that equals one
of them is refused by the unique constraint and the registration draws another
(enrollment/services.py), so a number is never handed out twice. The key must never change once
numbers are issued (a new key maps later sequence values onto issued numbers: each would then
cost a retry). The development default is refused by `manage.py check --deploy`.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import connection

KPJ_SEQUENCE = "enrollment_kpj_seq"
_HALF = 10**5  # two 5-digit halves: 10^5 * 10^5 = 10^10 bases
_ROUNDS = 8


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


def _key() -> bytes:
    key = str(getattr(settings, "KPJ_KEY", "") or "")
    if len(key) < 32:
        raise ValueError("KPJ_KEY must be a secret of at least 32 characters")
    return key.encode("utf-8")


def _round(key: bytes, n: int, half: int) -> int:
    mac = hmac.new(key, n.to_bytes(1, "big") + half.to_bytes(4, "big"), hashlib.sha256)
    return int.from_bytes(mac.digest()[:8], "big") % _HALF


def permute(value: int, key: bytes | None = None) -> int:
    """The keyed bijection of [0, 10^10) that turns a sequence value into a KPJ base."""
    if not 0 <= value < _HALF * _HALF:
        raise ValueError("a KPJ base has 10 digits")
    key = key or _key()
    left, right = divmod(value, _HALF)
    for n in range(_ROUNDS):
        left, right = right, (left + _round(key, n, right)) % _HALF
    return left * _HALF + right


def unpermute(value: int, key: bytes | None = None) -> int:
    """The inverse of `permute` (tests prove the bijection; support can find a number's order)."""
    key = key or _key()
    left, right = divmod(value, _HALF)
    for n in reversed(range(_ROUNDS)):
        left, right = (right - _round(key, n, left)) % _HALF, left
    return left * _HALF + right


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
