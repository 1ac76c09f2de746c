"""The NIK check while an agent types (/register/check-nik/), and its per-user rate limit.

What it may say: the NIK's own rules (16 digits, a real birth date, a known district) and
whether a participant **the user may see** (`permissions.participants_in_scope`) already has
it, with a link. A NIK held outside the user's scope gets exactly the answer a free NIK gets:
the check never asks whether the NIK exists anywhere else, so neither the words nor the time it
takes can tell. Such a NIK is refused when the form is submitted (the unique index), with a
neutral message naming no KPJ and no branch (enrollment/views.py, `register`).

Each check of a well-formed NIK counts against settings.NIK_CHECK_RATE per user ("30/min";
empty = no limit), in the cache (Redis): the window starts at the first check and lasts the
period. While Redis is down the count fails open, like the API throttle
(enrollment/api/auth.py), with a warning in the log at most once a minute.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from bpjsportal.core import redis_status
from bpjsportal.core.api.errors import FieldError

from .errors import DuplicateNik, RegistrationError
from .models import NikPrefix, Participant, nik_q
from .nik import NikError, parse_nik
from .permissions import participants_in_scope

log = logging.getLogger("bpjsportal.security")
_warned_at = 0.0
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class NikCheck:
    message: str
    ok: bool = False
    participant: Participant | None = None  # in the user's scope, already registered
    limited: bool = False
    retry_after: int = 0


def parse_rate(rate: str) -> tuple[int, int]:
    """ "30/min" -> (30, 60): how many checks, in how many seconds (s, min, hour, day)."""
    count, _slash, period = rate.partition("/")
    seconds = PERIODS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or seconds is None:
        raise ImproperlyConfigured(f"NIK_CHECK_RATE {rate!r}: write e.g. 30/min or 200/hour")
    return int(count), seconds


def counter_key(user: Any) -> str:
    # the database's name too: tests and the demo share one Redis, and ids restart
    return f"nikcheck:{connection.settings_dict['NAME']}:{user.pk}:{user.username}"


def _count(user: Any) -> NikCheck | None:
    """Count one check; a refusal when the user is past the limit, else None."""
    rate: str | None = settings.NIK_CHECK_RATE
    if not rate:
        return None
    limit, seconds = parse_rate(rate)
    key = counter_key(user)
    count = 0
    for _attempt in range(2):  # a second time if the window ended between add and incr
        cache.add(key, 0, timeout=seconds)
        try:
            count = cache.incr(key)
            break
        except ValueError:
            if redis_status.is_down(redis_status.cache_url()):
                _warn_unavailable()
                return None
    if count <= limit:
        return None
    period = {
        1: pgettext("rate period", "second"),
        60: pgettext("rate period", "minute"),
        3600: pgettext("rate period", "hour"),
        86400: pgettext("rate period", "day"),
    }[seconds]
    message = _(
        "Too many NIK checks (more than %(limit)s per %(period)s). Wait a moment and type the "
        "NIK again; it is also checked when you submit the form."
    ) % {"limit": limit, "period": period}
    return NikCheck(message, limited=True, retry_after=seconds)


def _warn_unavailable() -> None:
    global _warned_at
    now = time.monotonic()
    if now - _warned_at > 60:
        _warned_at = now
        log.warning("NIK check limit not counted: the cache (Redis) is unavailable")


def check_nik(user: Any, value: str) -> NikCheck:
    """What the registration form says about a NIK being typed (see the module docstring)."""
    value = value.strip()
    if not value:
        return NikCheck("")
    try:
        parsed = parse_nik(value, today=timezone.localdate())
    except NikError as exc:
        return NikCheck(str(exc.message))
    if not NikPrefix.objects.filter(code=parsed.prefix6).exists():
        return NikCheck(_("The NIK's first six digits are not a known district code."))
    refused = _count(user)
    if refused is not None:
        return refused
    existing = (
        participants_in_scope(user, "view_participants")
        .filter(nik_q(parsed.nik))
        .only("pk", "kpj_number")
        .first()
    )
    if existing is not None:
        return NikCheck(_("This NIK is already registered."), participant=existing)
    sex = _("female") if parsed.sex == "F" else _("male")
    message = _("Valid NIK: born %(date)s, %(sex)s.") % {
        "date": parsed.birth_date.strftime("%d-%m-%Y"),
        "sex": sex,
    }
    return NikCheck(message, ok=True)


def as_seen_by(who: Any, exc: RegistrationError) -> list[FieldError]:
    """The errors of a refused registration as `who` (a user or an API client) may read them: a
    NIK held by a participant outside `who`'s scope says only that it cannot be registered,
    with no KPJ or branch (the NIK check does not reveal it either). Pages and the API both."""
    if not isinstance(exc, DuplicateNik) or (
        exc.existing_id is not None
        and participants_in_scope(who).filter(pk=exc.existing_id).exists()
    ):
        return exc.errors
    neutral = _(
        "This NIK cannot be registered here. If the worker is not yet a participant, ask your "
        "branch office to check the NIK."
    )
    return [
        FieldError(e.field, e.code, neutral) if e.code == "duplicate_nik" else e for e in exc.errors
    ]
