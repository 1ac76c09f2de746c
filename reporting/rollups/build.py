"""The range build: the range a rebuild must cover, and every day of it in one pass over the
ledger (one session, or several: reporting.rollups.parallel)."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from contributions import coverage as rules

from ..models import RollupDay
from .cohorts import rebuild_cohorts
from .definitions import LOCK_KEY, BuildResult, day_bounds, marks
from .finish import delete_range, finish
from .group import (
    DIRECT,
    TimedCursor,
    build_group,
    close_build,
    open_build,
    province_chunks,
)
from .parallel import build_parallel
from .progress import SILENT, BuildProgress
from .sql_rows import AGENT_ACCUMULATOR_SQL

logger = logging.getLogger(__name__)


def range_params(start: date, end: date, chain: bool) -> dict[str, Any]:
    p = start - timedelta(days=1)
    return {
        "tz": timezone.get_current_timezone_name(),
        "start": start,
        "start_ts": day_bounds(start)[0],
        "end": day_bounds(end)[1],
        "p": p,
        "e": end,
        "e1": end + timedelta(days=1),
        "month_e": rules.month_start(end),
        "chain": chain and p.year == start.year,
        "year_from": start.year + 1,  # the 1 January rows that restart year-to-date sums
        "year_to": end.year,
    }


def build_range(
    start: date,
    end: date,
    *,
    chain: bool,
    keep: Collection[date] | None = None,
    progress: BuildProgress = SILENT,
) -> int:
    """Rebuild every day from `start` to `end`; `chain` = carry the year-to-date sums of the
    stored day before `start` (same year). Readers see the old range or the new one, never a
    mix. The participants are taken a group of provinces at a time (settings.
    ROLLUP_BUILD_CHUNK participants or one province), so the temp space is that of the largest
    group; with settings.ROLLUP_BUILD_WORKERS > 1 and outside a transaction, that many sessions
    build the groups at once (`build_parallel`), otherwise one transaction builds them in
    turn. `keep`: store only these days of the range (finish.KEPT_DAY). `progress` hears of
    each phase and each group built. Returns the number of DailyRollup rows built."""
    params = range_params(start, end, chain)
    params["keep"] = None if keep is None else sorted(set(keep))
    workers = settings.ROLLUP_BUILD_WORKERS
    if workers > 1 and not connection.in_atomic_block:
        return build_parallel(params, workers, progress)
    started = time.monotonic()
    with transaction.atomic(), connection.cursor() as raw:
        cursor = TimedCursor(raw)
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        mark, pmark = marks()
        params.update(mark=mark, pmark=pmark, low=0)
        chunks = province_chunks(params["end"], pmark, settings.ROLLUP_BUILD_CHUNK)
        progress.phase(
            f"{start}..{end} ({(end - start).days + 1} days): {len(chunks)} group(s) of"
            " provinces in one session"
        )
        progress.groups(len(chunks))
        delete_range(cursor, start, end)
        open_build(cursor, params)
        cursor.execute(AGENT_ACCUMULATOR_SQL)
        rows = 0
        for low, high in chunks:
            rows += build_group(cursor, {**params, "plo": low, "phi": high}, DIRECT)
            progress.group_built()
        progress.phase("agent and province rows, day marks")
        finish(cursor, params, DIRECT.agent_events, started)
        close_build(cursor)
        cursor.execute("DROP TABLE rb_aev_all")
    logger.info(
        "rollup build %s..%s in %d province group(s): %s", start, end, len(chunks), cursor.report()
    )
    return rows


def covering_range(start: date, end: date) -> tuple[date, date, bool]:
    """The range a rebuild of `start`..`end` must cover. Year-to-date sums chain from the day
    before: from 1 January unless that day is built; and every later built day of the year
    depends on this range, so the range runs to the last of them. Also: whether to chain."""
    if (start.month, start.day) != (1, 1) and not RollupDay.objects.filter(
        day=start - timedelta(days=1)
    ).exists():
        start = date(start.year, 1, 1)
    later = RollupDay.objects.filter(day__gt=end, day__year=end.year).order_by("-day").first()
    if later is not None:
        end = later.day
    return start, end, (start.month, start.day) != (1, 1)


def rebuild_rollups(
    *,
    start: date,
    end: date,
    keep_days: Collection[date] | None = None,
    progress: BuildProgress = SILENT,
) -> BuildResult:
    """Rebuild every day from `start` to `end` inclusive, event-based: one pass over the ledger
    for the whole range (`build_range`). The year-to-date sums chain
    from the day before `start`: if that day was never built, the rebuild starts on 1 January
    of `start`'s year; later built days of the same year are rebuilt too; then the
    cohort rollups (reporting.rollups.cohorts). `keep_days`: store only these days of the
    range (a quick build for the demo: month ends and recent days; a kept day's figures are
    those of a full build). `progress` hears of each phase and each group of provinces built
    (`manage.py rebuild_rollups` prints them). Raises ValueError if end is before start."""
    if end < start:
        raise ValueError("end is before start")
    started = time.monotonic()
    start, end, chain = covering_range(start, end)
    rows = build_range(start, end, chain=chain, keep=keep_days, progress=progress)
    progress.phase("cohort rollups")
    rebuild_cohorts()  # the cohort rollups (a no-op when nothing they read changed)
    return BuildResult(days=(end - start).days + 1, rows=rows, seconds=time.monotonic() - started)
