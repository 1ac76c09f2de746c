"""The demo's dashboard (last steps of enrollment.demo.run_demo): the rollups of every demo day
(with the cohort rollups), then targets scaled to the demo, so the progress chart compares the
demo's own figures with a reachable goal rather than the national 20 million."""

from __future__ import annotations

import calendar
import math
from datetime import date, timedelta

from django.db.models import Max, Sum

from enrollment.demo import DemoContext, register_step
from enrollment.models import Participant

from .models import ProvinceRollup, RollupDay, Target, TargetVersion
from .rollups import rebuild_rollups
from .targets import save_target, seed_targets

# A year's demo target: this many times the active participants at the end of the year (or on
# the latest day, for this year), rounded up to a hundred: a goal a little ahead of the data.
PAST_YEAR_STRETCH = 1.1
THIS_YEAR_STRETCH = 1.25
DEMO_TARGET_SOURCE = "demo"


def rollup_start(ctx: DemoContext) -> date:
    """The first day the demo builds: 1 January of the dashboard's year, or of the year before
    in the first half of a year (the monthly chart then has at least six months to show); never
    before the demo's first day. Earlier days: `manage.py rebuild_rollups`."""
    back = ctx.today.year if ctx.today.month > 6 else ctx.today.year - 1
    return max(date(back, 1, 1), ctx.first_day)


# Days the demo stores besides every month's last day: the most recent ones (daily figures of the
# last weeks). The other days are not stored (`rebuild_rollups(keep_days=...)`: a kept day's
# figures are a full build's): a year has 11 times fewer rows, which is most of the demo's time.
# The nightly build of the next day finds the day before missing and rebuilds the whole year.
RECENT_DAYS = 35


def demo_rollup_days(start: date, end: date) -> list[date]:
    """The days the demo stores: each month's last day from `start` to `end`, and the last
    RECENT_DAYS days up to `end` (today)."""
    days = {end - timedelta(days=i) for i in range(RECENT_DAYS) if end - timedelta(days=i) >= start}
    day = start
    while day <= end:
        last = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
        if last <= end:
            days.add(last)
        day = last + timedelta(days=1)
    return sorted(days)


def seed_rollups(ctx: DemoContext) -> dict[str, int]:
    """The rollups of the month ends and recent days from rollup_start to today, and the cohort
    rollups of every demo month. Skipped when today is built and counts every participant (a
    second `make run` the same day; later days come from the nightly build)."""
    if RollupDay.objects.filter(day=ctx.today).exists():
        counted = ProvinceRollup.objects.filter(day=ctx.today).aggregate(n=Sum("registered"))["n"]
        if counted == Participant.objects.count():
            return {"rollup_days": 0}
    start = rollup_start(ctx)
    keep = demo_rollup_days(start, ctx.today)
    rebuild_rollups(start=start, end=ctx.today, keep_days=keep)
    return {"rollup_days": len(keep)}


def _active_on_last_day(year: int, until: date) -> int | None:
    last = RollupDay.objects.filter(day__year=year, day__lte=until).aggregate(d=Max("day"))["d"]
    if last is None:
        return None
    return int(ProvinceRollup.objects.filter(day=last).aggregate(a=Sum("active"))["a"] or 0)


def seed_demo_targets(ctx: DemoContext) -> dict[str, int]:
    """Each demo year's target scaled to the demo's active participants; a target an admin
    edited (its latest version not from the seed or the demo) is never overwritten."""
    seed_targets()
    changed = 0
    for year in range(ctx.first_day.year, ctx.today.year + 1):
        active = _active_on_last_day(year, ctx.today)
        if not active:
            continue
        latest = TargetVersion.objects.filter(year=year).order_by("-version").first()
        if latest is not None and latest.source not in ("seed", DEMO_TARGET_SOURCE):
            continue
        stretch = THIS_YEAR_STRETCH if year == ctx.today.year else PAST_YEAR_STRETCH
        value = math.ceil(active * stretch / 100) * 100
        target = Target.objects.filter(year=year).first()
        if target is not None and target.active_target == value:
            continue
        save_target(
            year=year,
            active_target=value,
            note=f"demo: {stretch:.2f} x the demo's {active:,} active participants",
            source=DEMO_TARGET_SOURCE,
        )
        changed += 1
    return {"targets_scaled": changed}


def register_demo_steps() -> None:
    register_step(80, "rollups", seed_rollups)
    register_step(90, "targets", seed_demo_targets)
