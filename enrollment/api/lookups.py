"""A payment channel's daily cap on participant look-ups, and the alert when one reaches it.

A channel finds a participant by the exact KPJ or NIK the payer tells the cashier, and sees only
what a cashier shows (a masked name and the amount due). Even so, a channel token that tries
numbers one after another would learn who is registered: the probe read 60 participants in 3 s,
about 1.7 million a day within the request throttle. So every look-up by a channel client counts
against a daily limit (`ApiClient.daily_lookup_limit`, else settings.API_CHANNEL_LOOKUPS_PER_DAY);
past it the client gets 429 `lookup_limit_reached` until midnight (Asia/Jakarta), and the first
refusal of the day raises a SecurityAlert for the administrators (back office, ERROR log line,
mail to ADMINS).

The count lives in Redis (an INCR per look-up: no database write on the cashier's path). While
Redis is down the count fails open, like the request throttle (enrollment/api/auth.py), with a
warning in the log at most once a minute.
"""

from __future__ import annotations

import logging
import time
from datetime import date

from django.conf import settings
from django.core.cache import cache
from django.core.mail import mail_admins
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import status

from bpjsportal.core.api.errors import ApiError

from ..models import ApiClient, SecurityAlert

log = logging.getLogger("bpjsportal.security")
_warned_at = 0.0


def limit_for(client: ApiClient) -> int:
    if client.daily_lookup_limit is not None:
        return int(client.daily_lookup_limit)
    return int(settings.API_CHANNEL_LOOKUPS_PER_DAY)


def _key(client: ApiClient, day: date) -> str:
    # the random token prefix too: ids restart in a recreated database sharing the cache
    return f"lookups:{client.pk}:{client.token_prefix}:{day.isoformat()}"


def lookups_today(client: ApiClient) -> int | None:
    """How many look-ups the client made today (None while the count is unavailable)."""
    value = cache.get(_key(client, timezone.localdate()))
    return None if value is None else int(value)


def count_lookup(client: ApiClient) -> None:
    """Count one look-up of a payment channel; ApiError 429 lookup_limit_reached past its
    daily limit. Other scopes look up only inside their own scope and are not counted."""
    if client.scope != ApiClient.Scope.CHANNEL:
        return
    day = timezone.localdate()
    key = _key(client, day)
    cache.add(key, 0, timeout=2 * 24 * 3600)
    try:
        count = cache.incr(key)
    except ValueError:  # the cache (Redis) is unavailable: fail open, say so
        _warn_unavailable()
        return
    limit = limit_for(client)
    if count <= limit:
        return
    if count == limit + 1:
        raise_alert(client, day=day, limit=limit)
    raise ApiError(
        "lookup_limit_reached",
        _(
            "This client has made its %(limit)s participant look-ups for today; the limit "
            "resets at midnight (WIB). Ask BPJS Ketenagakerjaan to raise it if you need more."
        )
        % {"limit": limit},
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        limit=limit,
    )


def raise_alert(client: ApiClient, *, day: date, limit: int) -> SecurityAlert:
    """The administrators' alert for a client at its limit: one row per client and day."""
    message = (
        f"API client {client.name!r} (id {client.pk}, scope {client.scope}) reached its daily "
        f"limit of {limit} participant look-ups on {day.isoformat()}; further look-ups are "
        "refused until midnight WIB. If this is not the channel's normal traffic, revoke its "
        "token (back office: API clients)."
    )
    alert, created = SecurityAlert.objects.get_or_create(
        kind=SecurityAlert.Kind.LOOKUP_LIMIT, client=client, day=day, defaults={"message": message}
    )
    if created:
        log.error("security alert: %s", message)
        transaction.on_commit(
            lambda: mail_admins(
                f"Look-up limit reached: {client.name}", message, fail_silently=True
            )
        )
    return alert


def _warn_unavailable() -> None:
    global _warned_at
    now = time.monotonic()
    if now - _warned_at > 60:
        _warned_at = now
        log.warning("channel look-up limit not counted: the cache (Redis) is unavailable")
