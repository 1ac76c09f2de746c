"""Demo data for `make run` (on enrollment's `demo_seeding` signal): the seed targets and this
year's rollups, so the dashboard has something to show. Safe to run twice."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone

from .rollups import rebuild_rollups
from .targets import seed_targets


def on_demo_seeding(**_kwargs: Any) -> dict[str, int]:
    seed_targets()
    today = timezone.localdate()
    result = rebuild_rollups(start=date(today.year, 1, 1), end=today)
    return {"reporting_rollup_days": result.days}
