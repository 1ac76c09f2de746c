"""The dashboard's figures, cached by the state they were computed from.

Every figure on the dashboard, its exports and the progress API is a pure function of: the rollup
rows, the targets (with their milestones and quotas), the labels (regions, occupations, partners,
in the request's language) and the filters. The cache key holds all of them:

- the rollups: the number of built days and the latest `RollupDay.built_at`. Every write to the
  rollup tables - the event build, the per-day build and the intraday refresh - stamps the days it
  wrote with `clock_timestamp()` in the same transaction, so a reader sees a new key exactly when
  it sees the new rows (on the primary or on the read replica: the stamp is read through the same
  router as the figures);
- the targets: the latest `TargetVersion` id (every save through the form or the admin appends
  one) and a *token* in the cache, replaced on every save or delete of a target, a milestone, a
  quota, a partner, an occupation or a region (Django signals; the ORM paths the version table
  does not see);
- the database's name (tests, the demo and the benchmarks share one Redis), the language and the
  filters (`as_of` included, so a new day is a new key).

A changed state is a new key: nothing is invalidated, old entries expire
(`REPORTING_CACHE_SECONDS`, a backstop for a change no signal sees). When Redis is down, a read
is a miss (bpjsportal/cache.py) and the figures are computed from the rollups, as without the
cache. After every build or refresh, `reporting.warm_dashboard` computes the national page and
each province's for the current year, so the first admin of the morning does not wait either.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import astuple
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import router, transaction
from django.db.models import Count, Max
from django.utils.translation import get_language

if TYPE_CHECKING:
    from .selectors import Filters

logger = logging.getLogger(__name__)
T = TypeVar("T")
TOKEN_KEY = "reporting:figures-token"  # noqa: S105 - a cache key, not a secret


def _token() -> str:
    token = cache.get(TOKEN_KEY)
    if token is None:
        cache.add(TOKEN_KEY, uuid.uuid4().hex, None)  # another process may have set one first
        token = cache.get(TOKEN_KEY) or uuid.uuid4().hex  # Redis down: a key nobody shares
    return str(token)


def _new_token() -> None:
    cache.set(TOKEN_KEY, uuid.uuid4().hex, None)


def bump(**_kwargs: Any) -> None:
    """A new token: every cached figure is stale (a signal receiver, hence the kwargs). Again
    at commit: a reader between the save and the commit may have cached the old figures under
    the first new token."""
    _new_token()
    transaction.on_commit(_new_token)


def state() -> tuple[Any, ...]:
    """What the figures depend on besides the filters (see the module's docstring)."""
    from .models import RollupDay, TargetVersion

    days = RollupDay.objects.aggregate(n=Count("day"), at=Max("built_at"))
    version = TargetVersion.objects.aggregate(v=Max("id"))["v"]
    alias = router.db_for_read(RollupDay)
    return (
        settings.DATABASES[alias]["NAME"],
        days["n"],
        days["at"].isoformat() if days["at"] else None,
        version,
        _token(),
    )


def cached(name: str, f: Filters, compute: Callable[[], T], *extra: Any, labels: bool = True) -> T:
    """`compute()` for the filters, from the cache when the state has not changed since.
    `labels`: the value holds translated labels (the language is part of the key)."""
    if not settings.REPORTING_CACHE_SECONDS:
        return compute()
    parts = (name, state(), get_language() or "" if labels else "", astuple(f), extra)
    key = "reporting:" + name + ":" + hashlib.sha256(repr(parts).encode()).hexdigest()
    hit = cache.get(key)
    if hit is not None:
        return hit
    value = compute()
    cache.set(key, value, settings.REPORTING_CACHE_SECONDS)
    return value


def connect_signals() -> None:
    """Reporting's own and the reference tables' saves and deletes replace the token."""
    from django.db.models.signals import post_delete, post_save

    from enrollment.models import Occupation, Partner, Region

    from .models import Target, TargetBreakdown, TargetMilestone

    for model in (Target, TargetMilestone, TargetBreakdown, Partner, Occupation, Region):
        for signal in (post_save, post_delete):
            signal.connect(bump, sender=model, weak=False, dispatch_uid=f"reporting-{model}")


def warm(year: int | None = None) -> int:
    """Compute the dashboard page (in every language) and the progress figures for the whole
    country and for each province, for `year` (default this year) as of today - what admins
    and regional admins open first. Returns the number of entries computed or found."""
    from django.utils import timezone
    from django.utils.translation import override

    from enrollment.models import Region

    from . import selectors

    today = timezone.localdate()
    year = year or today.year
    as_of = selectors.default_as_of(year)
    provinces = [None, *Region.objects.filter(level=1).values_list("code", flat=True)]
    done = 0
    for province in provinces:
        f = selectors.Filters(year=year, as_of=as_of, province=province)
        selectors.progress(f)
        done += 1
        for language, _name in settings.LANGUAGES:
            with override(language):
                selectors.page_figures(f)
            done += 1
    return done
