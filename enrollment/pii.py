"""The NIK at rest: a keyed hash to find it by, a ciphertext to read it from, masks to show it.

- `nik_digest(nik)`: HMAC-SHA256 under NIK_HMAC_KEY (32 bytes). Look-ups and the uniqueness of a
  participant's NIK use this column (unique index), so a search by NIK is one index probe and never
  decrypts anything. A keyed hash, not a plain SHA-256: the NIK space is small (region, birth date,
  serial) and a plain hash could be reversed by trying every NIK.
- `encrypt_nik(nik)` / `decrypt_nik(token)`: AES-256-GCM under the first key of
  NIK_ENCRYPTION_KEYS, a fresh 96-bit nonce per value; the token is "<key id>:<base64url>", so a
  token names the key that opened it and old keys keep working until `rotate_nik_keys` has
  re-encrypted every row under the current one.
- `mask_nik` / `mask_phone`: what lists, logs and exports show instead of the full value.

Key rotation: docs/operations.md ("NIK keys"); design: docs/security.md ("Personal data").
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import re
from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

DIGEST_BYTES = 32
NONCE_BYTES = 12
KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,16}")
# The shape of a stored token; also a CHECK constraint on the column (models.py).
TOKEN_REGEX = r"^[A-Za-z0-9_-]{1,16}:[A-Za-z0-9_-]+$"  # noqa: S105 - a pattern, no secret


class NikKeyError(ImproperlyConfigured):
    """The NIK keys in the environment are missing or malformed, or a token's key is unknown."""


class NikDecryptError(Exception):
    """A stored NIK token does not open under its key (corrupted, or the key id was reused)."""


# --- keys ----------------------------------------------------------------------------------
def _decode_key(value: str) -> bytes:
    raw = value.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        try:
            key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if len(key) != 32:
        raise NikKeyError("A NIK encryption key must be 32 bytes, base64-encoded.")
    return key


def parse_encryption_keys(value: str) -> list[tuple[str, bytes]]:
    """'id1:base64key,id0:base64key' → [(id, key), ...]; the first is the current key."""
    keys: list[tuple[str, bytes]] = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep or not KEY_ID_RE.fullmatch(key_id):
            raise NikKeyError(
                "NIK_ENCRYPTION_KEYS items are 'id:base64key', the id 1-16 of [A-Za-z0-9_-]."
            )
        if any(k == key_id for k, _ in keys):
            raise NikKeyError(f"NIK_ENCRYPTION_KEYS names key id {key_id!r} twice.")
        keys.append((key_id, _decode_key(encoded)))
    if not keys:
        raise NikKeyError("NIK_ENCRYPTION_KEYS is empty: at least one key is needed.")
    return keys


def parse_hmac_key(value: str) -> bytes:
    key = (value or "").encode("utf-8")
    if len(key) < 32:
        raise NikKeyError("NIK_HMAC_KEY must be at least 32 characters (e.g. 43 of base64url).")
    return key


@dataclass(frozen=True)
class NikKeys:
    hmac_key: bytes
    old_hmac_key: bytes | None
    current_id: str
    ciphers: dict[str, AESGCM]


@lru_cache(maxsize=8)
def _keys_for(hmac_value: str, old_hmac_value: str, encryption_value: str) -> NikKeys:
    pairs = parse_encryption_keys(encryption_value)
    return NikKeys(
        hmac_key=parse_hmac_key(hmac_value),
        old_hmac_key=parse_hmac_key(old_hmac_value) if old_hmac_value else None,
        current_id=pairs[0][0],
        ciphers={key_id: AESGCM(key) for key_id, key in pairs},
    )


_current: NikKeys | None = None


def keys() -> NikKeys:
    """The keys of the current settings, parsed once (and again when a test overrides them)."""
    global _current
    if _current is None:
        _current = _keys_for(
            settings.NIK_HMAC_KEY, settings.NIK_HMAC_OLD_KEY or "", settings.NIK_ENCRYPTION_KEYS
        )
    return _current


@receiver(setting_changed)
def _forget_keys(*, setting: str, **kwargs: Any) -> None:
    global _current
    if setting.startswith("NIK_"):
        _current = None


def generate_encryption_key() -> str:
    """A fresh AES-256 key in the form NIK_ENCRYPTION_KEYS takes (base64url)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


# --- digest --------------------------------------------------------------------------------
def _digest(key: bytes, nik: str) -> bytes:
    return hmac.digest(key, nik.encode("utf-8"), "sha256")  # the one-shot C implementation


def nik_digest(nik: str) -> bytes:
    """The keyed hash stored in Participant.nik_digest (unique): how a NIK is found."""
    return _digest(keys().hmac_key, nik)


def lookup_digests(nik: str) -> list[bytes]:
    """The digests a stored row may carry for `nik`: the current key's, and while an HMAC key
    rotation runs (NIK_HMAC_OLD_KEY set), the old key's too."""
    k = keys()
    found = [_digest(k.hmac_key, nik)]
    if k.old_hmac_key is not None:
        found.append(_digest(k.old_hmac_key, nik))
    return found


def lookup_digests_many(niks: Iterable[str]) -> dict[bytes, str]:
    """digest → NIK for every digest the NIKs may be stored under (see lookup_digests)."""
    return {d: nik for nik in niks for d in lookup_digests(nik)}


# --- ciphertext ----------------------------------------------------------------------------
def encrypt_nik(nik: str) -> str:
    k = keys()
    nonce = os.urandom(NONCE_BYTES)
    sealed = k.ciphers[k.current_id].encrypt(nonce, nik.encode("utf-8"), k.current_id.encode())
    return k.current_id + ":" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")


def token_key_id(token: str) -> str:
    return token.partition(":")[0]


def decrypt_nik(token: str) -> str:
    key_id, sep, body = token.partition(":")
    cipher = keys().ciphers.get(key_id)
    if not sep or cipher is None:
        raise NikKeyError(
            f"No NIK encryption key with id {key_id!r} in NIK_ENCRYPTION_KEYS: keep old keys "
            "listed until `manage.py rotate_nik_keys` has finished."
        )
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], key_id.encode())
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise NikDecryptError(f"A stored NIK does not decrypt under key {key_id!r}.") from exc
    return plain.decode("utf-8")


def nik_columns(nik: str) -> tuple[bytes, str]:
    """(nik_digest, nik_encrypted) for one NIK: what a raw INSERT or COPY writes."""
    return nik_digest(nik), encrypt_nik(nik)


# --- masks ---------------------------------------------------------------------------------
def mask_nik(nik: str) -> str:
    """Show the region prefix and the last two digits only: 3273********0012 style."""
    if len(nik) != 16:
        return "*" * len(nik)
    return nik[:4] + "*" * 10 + nik[-2:]


def mask_name(name: str) -> str:
    """Budi Santoso → B*** S***: the first letter of each word, so a cashier can check the
    payer without reading the name; every word shows the same stars, hiding its length."""
    return " ".join(word[0] + "***" for word in name.split() if word)


def mask_phone(phone: str) -> str:
    """+6281234567890 → +62812*****890: the operator prefix and the last three digits."""
    if len(phone) < 8:
        return "*" * len(phone)
    head = 6 if phone.startswith("+") else 5
    return phone[:head] + "*" * (len(phone) - head - 3) + phone[-3:]


# --- disclosure log: every response that shows a full NIK is logged (UU PDP: access is traceable)
_disclosed: ContextVar[list[int] | None] = ContextVar("nik_disclosed", default=None)
disclosure_log = logging.getLogger("bpjsportal.pii.disclosure")


def begin_disclosures() -> Token[list[int] | None]:
    """Start collecting, for one request, the participants whose full NIK a response shows."""
    return _disclosed.set([])


def note_disclosure(participant_id: int) -> None:
    """Called where a full NIK leaves the system (the API serializer, unmasked)."""
    seen = _disclosed.get()
    if seen is not None:
        seen.append(participant_id)
    else:  # outside a request (a task, a command): log it at once
        disclosure_log.info("full NIK shown outside a request: participant %s", participant_id)


def pending_disclosures() -> bool:
    return bool(_disclosed.get())


def end_disclosures(token: Token[list[int] | None], *, who: str, where: str) -> int:
    """Log one line for the request's disclosures (who, where, how many, which ids); return the
    count. The ids are row ids, not personal data."""
    seen = _disclosed.get() or []
    _disclosed.reset(token)
    if seen:
        ids = sorted(set(seen))
        shown = ",".join(str(i) for i in ids[:200]) + (" …" if len(ids) > 200 else "")
        disclosure_log.info(
            "full NIK shown: %s at %s, %d participant(s): %s", who, where, len(ids), shown
        )
    return len(seen)
