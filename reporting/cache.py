"""The dashboard's figures, cached by the state they were computed from.

Every figure on the dashboard, its exports and the progress API is a pure function of: the rollup
rows, the targets (with their milestones and quotas), the labels (regions, occupations, partners,
in the request's language), the code that computes them and the filters. The cache key holds
all of them:

- the *figures version*: a one-row table (`FiguresVersion`) whose number goes up in the same
  transaction as every write the figures depend on - each rollup build, per-day build and
  intraday refresh (`BUMP_SQL`, run by them), and each save or delete of a target, a milestone,
  a quota, a partner, an occupation or a region (Django signals), and each reference data load.
  Being a row, it is read through the same database router as the figures and travels with the
  data to a read replica: a reader sees a new key exactly when it sees the new data, on the
  primary or on a lagging replica;
- as a guard for a rollup write that does not go through our code, the number of built days and
  the latest `RollupDay.built_at` (stamped with `clock_timestamp()`);
- a digest of the modules that compute the figures (a deploy that changes them is a new key);
- the database's name (tests, the demo and the benchmarks share one Redis), the language when
  the value holds labels, and the filters (`as_of` included, so a new day is a new key).

A changed state is a new key: nothing is invalidated, old entries expire
(`REPORTING_CACHE_SECONDS`). When Redis is down, a read is a miss (bpjsportal/core/cache.py) and the
figures are computed from the rollups, as without the cache. After every build or refresh,
`reporting.warm_dashboard` (reporting/warming.py) computes the national page and each province's
for the current year, so the first admin of the morning does not wait either.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import astuple
from functools import cache as once
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import connections, router
from django.db.models import Count, Max
from django.db.models.signals import post_delete, post_save
from django.utils.translation import get_language

from enrollment.models import Occupation, Partner, Region

from .models import FiguresVersion, RollupDay, Target, TargetBreakdown, TargetMilestone

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Raise the figures version (an upsert: the row is there from the migration, but a flushed test
# database may have lost it). Run inside the writing transaction.
BUMP_SQL = """INSERT INTO reporting_figuresversion (id, number) VALUES (1, 1)
ON CONFLICT (id) DO UPDATE SET number = reporting_figuresversion.number + 1"""

# The modules whose code computes the cached values.
_CODE = ("selectors.py", "projection.py", "targets.py", "cache.py", "cohorts.py")


@once
def code_digest() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in _CODE:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def bump(**_kwargs: Any) -> None:
    """Raise the figures version in the current transaction (a signal receiver, hence the
    kwargs): the next reader that sees this transaction's writes computes the figures anew."""
    with connections[router.db_for_write(FiguresVersion)].cursor() as cursor:
        cursor.execute(BUMP_SQL)


def state() -> tuple[Any, ...]:
    """What the figures depend on besides the filters (see the module's docstring)."""
    days = RollupDay.objects.aggregate(n=Count("day"), at=Max("built_at"))
    version = FiguresVersion.objects.filter(pk=1).values_list("number", flat=True).first()
    return (
        settings.DATABASES[router.db_for_read(RollupDay)]["NAME"],
        version,
        days["n"],
        days["at"].isoformat() if days["at"] else None,
        code_digest(),
    )


def cached(
    name: str, f: DataclassInstance, compute: Callable[[], T], *extra: Any, labels: bool = True
) -> T:
    """`compute()` for the filters (a dataclass: reporting.selectors.Filters), from the cache
    when the state has not changed since. `labels`: the value holds translated labels (the
    language is part of the key)."""
    if not settings.REPORTING_CACHE_SECONDS:
        return compute()
    language = (get_language() or "") if labels else ""
    parts = (name, state(), language, astuple(f), extra)
    key = "reporting:" + name + ":" + hashlib.sha256(repr(parts).encode()).hexdigest()
    hit = cache.get(key)
    if hit is not None:
        return hit
    value = compute()
    cache.set(key, value, settings.REPORTING_CACHE_SECONDS)
    return value


def connect_signals() -> None:
    """Reporting's own and the reference tables' saves and deletes raise the version."""
    for model in (Target, TargetMilestone, TargetBreakdown, Partner, Occupation, Region):
        for signal in (post_save, post_delete):
            signal.connect(bump, sender=model, weak=False, dispatch_uid=f"reporting-{model}")
