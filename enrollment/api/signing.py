"""Signed requests from payment channels (the biller protocol, docs/api.md "Bills").

A channel signs each payment notification:

    X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw request body>")>

Its secret is never stored: it is derived from the master key settings.CHANNEL_SIGNING_KEY, the
client's id and its secret generation,

    secret = hex HMAC-SHA256(CHANNEL_SIGNING_KEY, "channel-signing/<client id>/<generation>")

so a copy of the database reveals no secret; `create_api_client --scope channel` prints it once
and `rotate_signing_secret` moves a client to the next generation, the previous one verifying
until `ApiClient.signing_previous_until` (the overlap in which the channel switches). A
signature is refused when the timestamp is more than settings.BILL_SIGNATURE_MAX_SKEW seconds
(300) from the server clock, so a captured notification cannot be replayed later (within the
window a replay is answered from the idempotency record, never applied twice).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import ApiClient

HEADER = "X-Signature"
MAX_TIMESTAMP_DIGITS = 12


def _master_key() -> bytes:
    key = str(getattr(settings, "CHANNEL_SIGNING_KEY", "") or "")
    if len(key) < 32:
        raise ValueError("CHANNEL_SIGNING_KEY must be a secret of at least 32 characters")
    return key.encode("utf-8")


def signing_secret(client: ApiClient, generation: int | None = None) -> str:
    """The client's signing secret of `generation` (default: the current one)."""
    gen = client.signing_generation if generation is None else generation
    message = f"channel-signing/{client.pk}/{gen}".encode("ascii")
    return hmac.new(_master_key(), message, hashlib.sha256).hexdigest()


def secrets_in_force(client: ApiClient, now: datetime | None = None) -> list[str]:
    """The current secret, and during a rotation's overlap the previous one."""
    now = now or timezone.now()
    found = [signing_secret(client)]
    until = client.signing_previous_until
    if client.signing_generation > 1 and until is not None and now < until:
        found.append(signing_secret(client, client.signing_generation - 1))
    return found


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """hex HMAC-SHA256 of "<timestamp>." + body under `secret`."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("ascii"), message, hashlib.sha256).hexdigest()


def signature_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The X-Signature value a channel sends with `body` now (or at `timestamp`)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={sign(body, secret, at)}"


def verify(client: ApiClient, body: bytes, header: str, *, now: float | None = None) -> bool:
    """True when `header` carries a timestamp within the allowed skew and a v1 signature of
    "<t>.<body>" under one of the client's secrets in force. Malformed headers are False."""
    stamp = ""
    given: list[bytes] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            stamp = value
        elif name == "v1":
            given.append(value.strip().lower().encode("utf-8", "replace"))
    if (
        not (stamp.isascii() and stamp.isdigit() and len(stamp) <= MAX_TIMESTAMP_DIGITS)
        or not given
    ):
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > settings.BILL_SIGNATURE_MAX_SKEW:
        return False
    expected = [sign(body, secret, int(stamp)).encode() for secret in secrets_in_force(client)]
    return any(hmac.compare_digest(e, g) for e in expected for g in given)


def rotate_signing_secret(client: ApiClient, *, overlap: timedelta) -> str:
    """Move the client to its next secret generation; the previous secret keeps verifying for
    `overlap`. Returns the new secret (shown once)."""
    with transaction.atomic():
        locked = ApiClient.objects.select_for_update().get(pk=client.pk)
        locked.signing_generation += 1
        locked.signing_previous_until = timezone.now() + overlap
        locked.save(update_fields=["signing_generation", "signing_previous_until"])
    client.refresh_from_db()
    return signing_secret(client)
