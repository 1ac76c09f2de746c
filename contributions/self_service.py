"""The participant's own page: login with a one-time code, no staff account.

A worker gives their KPJ number or NIK and their date of birth. If they match a participant
with a phone, a 6-digit code is sent there by SMS/WhatsApp through the gateway (a Celery task,
after the commit). The answer is the same whether or not anything matched, so the page never
tells whether a KPJ or NIK exists.

- A code lives settings.SELF_SERVICE_CODE_MINUTES (5) minutes and is kept only as an HMAC.
- SELF_SERVICE_MAX_TRIES (5) wrong tries kill it and lock new codes for that participant for
  SELF_SERVICE_LOCK_MINUTES (15).
- Sends are limited per participant (SELF_SERVICE_SENDS_PER_PARTICIPANT per
  SELF_SERVICE_SEND_WINDOW_MINUTES, counted in the database) and per network address
  (SELF_SERVICE_REQUESTS_PER_ADDRESS an hour, counted in the cache, whether or not anything
  matched).
- The session that follows is the participant's alone and short: SELF_SERVICE_IDLE_SECONDS
  (900) without a request ends it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from enrollment.models import Participant, nik_q

from .models import ParticipantCode

CODE_DIGITS = 6


def _hash(code_id: int, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"self-service:{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


def find(number: str, birth_date: date) -> Participant | None:
    """The participant with this KPJ (11 digits) or NIK (16 digits) and birth date, or None."""
    number = "".join(ch for ch in (number or "") if ch.isdigit())
    qs = Participant.objects.filter(birth_date=birth_date)
    if len(number) == 11:
        return qs.filter(kpj_number=number).first()
    if len(number) == 16:
        return qs.filter(nik_q(number)).first()
    return None


def address_key(address: str) -> str:
    return f"self-service:address:{hashlib.sha256(address.encode()).hexdigest()[:32]}"


def address_allowed(address: str) -> bool:
    """Counts one request from `address`; False once it made too many this hour."""
    key = address_key(address)
    try:
        count = cache.incr(key)
    except ValueError:  # the first this hour
        cache.add(key, 0, timeout=3600)
        count = cache.incr(key)
    return bool(count <= settings.SELF_SERVICE_REQUESTS_PER_ADDRESS)


def new_code() -> str:
    """Six random digits (the secrets module's generator)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


@dataclass(frozen=True)
class Issued:
    code_id: int
    code: str  # to send, never stored


def issue_code(participant: Participant) -> Issued | None:
    """A new code for `participant` (the caller sends it), or None: no phone, locked after
    wrong tries, or too many codes sent lately. Earlier codes stop working."""
    if not participant.phone:
        return None
    now = timezone.now()
    with transaction.atomic():
        Participant.objects.select_for_update().filter(pk=participant.pk).first()  # one at a time
        recent = ParticipantCode.objects.filter(participant=participant)
        if recent.filter(locked_until__gt=now).exists():
            return None
        window = now - timedelta(minutes=settings.SELF_SERVICE_SEND_WINDOW_MINUTES)
        sent = recent.filter(created_at__gt=window).count()
        if sent >= settings.SELF_SERVICE_SENDS_PER_PARTICIPANT:
            return None
        recent.filter(used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
        code = new_code()
        row = ParticipantCode.objects.create(
            participant=participant,
            code_hash="",
            expires_at=now + timedelta(minutes=settings.SELF_SERVICE_CODE_MINUTES),
        )
        ParticipantCode.objects.filter(pk=row.pk).update(code_hash=_hash(row.pk, code))
    return Issued(row.pk, code)


def check_code(code_id: int, code: str) -> Participant | None:
    """The participant if `code` is right for the code `code_id`, still valid and unused;
    else None, counting a wrong try (the last allowed one kills the code and locks)."""
    now = timezone.now()
    with transaction.atomic():
        # whose code first, then the row locked by participant (a lock on a cluster names the
        # shard it takes)
        owner = ParticipantCode.objects.filter(pk=code_id).values_list("participant_id").first()
        row = (
            ParticipantCode.objects.select_for_update()
            .filter(participant_id=owner[0], pk=code_id)
            .first()
            if owner
            else None
        )
        if row is None or row.used_at is not None or row.expires_at <= now:
            return None
        if row.tries >= settings.SELF_SERVICE_MAX_TRIES:
            return None
        typed = "".join(ch for ch in (code or "") if ch.isdigit())
        if hmac.compare_digest(_hash(row.pk, typed), row.code_hash):
            ParticipantCode.objects.filter(pk=row.pk).update(used_at=now)
            return row.participant
        row.tries += 1
        update: dict[str, object] = {"tries": row.tries}
        if row.tries >= settings.SELF_SERVICE_MAX_TRIES:
            lock = timedelta(minutes=settings.SELF_SERVICE_LOCK_MINUTES)
            update.update(expires_at=now, locked_until=now + lock)
        ParticipantCode.objects.filter(pk=row.pk).update(**update)
    return None
