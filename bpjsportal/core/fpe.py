"""Numbers nobody can count through: a keyed format-preserving permutation of decimal numbers,
and the Luhn check digit.

    permute(n, key=k, half=10**h)  is a bijection of [0, half**2)

an 8-round balanced Feistel network over two h-digit halves whose round function is HMAC-SHA256
under `k` (in the style of NIST SP 800-38G's FF1/FF3, which use 10 and 8 rounds). Distinct
sequence values give distinct numbers, however many processes draw them; without the key, one
number says nothing about another. Used for KPJ numbers (enrollment/kpj.py, 5-digit halves) and
bill codes (contributions/bills.py, 7-digit halves)."""

from __future__ import annotations

import hashlib
import hmac

ROUNDS = 8


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


def luhn_valid(number: str) -> bool:
    """True for ASCII digits whose last digit is the Luhn digit of the others."""
    if len(number) < 2 or not number.isascii() or not number.isdigit():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def _round(key: bytes, n: int, value: int, half: int) -> int:
    mac = hmac.new(key, n.to_bytes(1, "big") + value.to_bytes(4, "big"), hashlib.sha256)
    return int.from_bytes(mac.digest()[:8], "big") % half


def permute(value: int, *, key: bytes, half: int) -> int:
    """The keyed bijection of [0, half**2) (half <= 2**32: a half fits the round's 4 bytes)."""
    if not 0 <= value < half * half or half > 2**32:
        raise ValueError(f"{value} is outside the permutation's domain")
    left, right = divmod(value, half)
    for n in range(ROUNDS):
        left, right = right, (left + _round(key, n, right, half)) % half
    return left * half + right


def unpermute(value: int, *, key: bytes, half: int) -> int:
    """The inverse of `permute`."""
    left, right = divmod(value, half)
    for n in reversed(range(ROUNDS)):
        left, right = (right - _round(key, n, left, half)) % half, left
    return left * half + right
