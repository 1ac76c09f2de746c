"""The signature of the SMS/WhatsApp gateway's callbacks (docs/reminders.md, "Callbacks").

    X-Timestamp: the Unix time, in whole seconds, at which the gateway signed the callback
    X-Signature: hex(HMAC-SHA256(secret, "<X-Timestamp>." + body))

The timestamp is part of the signed material, so a captured callback cannot be sent again with a
fresh time; the portal refuses one signed more than a window (REMINDER_CALLBACK_MAX_AGE) before
or after its own clock. No Django here: the portal (contributions/messaging/reminders.py) and the
fake gateway (contributions/messaging/fake_gateway.py, which runs on its own) sign with the same
code.
"""

from __future__ import annotations

import hashlib
import hmac
import time

MAX_TIMESTAMP_DIGITS = 12  # whole seconds until the year 33658


def sign(body: bytes, timestamp: str | int, secret: str) -> str:
    """hex HMAC-SHA256 of "<timestamp>." + body under `secret`."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The X-Timestamp and X-Signature headers of a callback sent now (or at `timestamp`)."""
    at = int(time.time()) if timestamp is None else timestamp
    return {"X-Timestamp": str(at), "X-Signature": sign(body, at, secret)}


def refusal(
    body: bytes, timestamp: str, signature: str, *, secret: str, max_age: float, now: float
) -> str | None:
    """None for an authentic callback signed within `max_age` seconds of `now`; otherwise why it
    is refused: "bad_signature" (a missing or malformed timestamp or signature, or one that does
    not match) or "expired" (authentic, but signed too long before or after `now`: a replay, or
    a gateway clock far off)."""
    stamp = timestamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_TIMESTAMP_DIGITS):
        return "bad_signature"
    given = signature.strip().lower().encode("utf-8", "replace")  # bytes: any header compares
    if not given or not hmac.compare_digest(sign(body, stamp, secret).encode(), given):
        return "bad_signature"
    if abs(now - int(stamp)) > max_age:
        return "expired"
    return None
