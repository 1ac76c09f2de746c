"""The last steps of every build: the old rows of the range out, and the agent rows, province
rows, RollupDay marks and figures version in."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from ..cache import BUMP_SQL
from .definitions import db_clock, derive_province_rollup
from .group import TimedCursor
from .sql_rows import AGENT_EVENTS_SQL, agent_insert_sql


def delete_range(cursor: TimedCursor, start: date, end: date) -> None:
    for table in ("dailyrollup", "agentrollup", "demographicrollup"):
        cursor.execute(
            f"DELETE FROM reporting_{table} WHERE day BETWEEN %s AND %s",  # noqa: S608
            [start, end],
        )


# A build may keep only some days of its range (params["keep"], a list of dates; None keeps
# every day): the figures of a kept day are the same either way (stocks and year-to-date sums
# run over every day before the rows are written), the other days are simply not stored.
KEPT_DAY = "(%(keep)s::date[] IS NULL OR day = ANY(%(keep)s::date[]))"


def finish(cursor: TimedCursor, params: dict[str, Any], agent_events: str, started: float) -> None:
    """The agent rows (from every group's agent events), the province rows, the days'
    RollupDay marks and the figures version, in the build's last transaction."""
    start, end = params["start"], params["e"]
    cursor.execute(AGENT_EVENTS_SQL.format(source=agent_events), params)
    cursor.execute(agent_insert_sql(), params)
    if params.get("keep") is not None:
        # the staged build wrote only the kept days; the direct one (a build inside a
        # transaction) wrote every day, the agent rows are written for every day, and a day
        # of the range built before and not kept now is no longer built
        for table in ("dailyrollup", "agentrollup", "demographicrollup", "rollupday"):
            cursor.execute(
                f"DELETE FROM reporting_{table} WHERE day BETWEEN %(start)s AND %(e)s "  # noqa: S608
                f"AND NOT {KEPT_DAY}",
                params,
            )
    derive_province_rollup(cursor, start, end)
    seconds = (time.monotonic() - started) / ((end - start).days + 1)
    cursor.execute(
        """INSERT INTO reporting_rollupday (day, built_at, seconds, ledger_mark,
                                            participant_mark)
           SELECT d::date, %s, %s, %s, %s
           FROM generate_series(%s::date, %s::date, interval '1 day') d
           WHERE %s::date[] IS NULL OR d::date = ANY(%s::date[])
           ON CONFLICT (day) DO UPDATE SET built_at = EXCLUDED.built_at,
               seconds = EXCLUDED.seconds,
               ledger_mark = EXCLUDED.ledger_mark,
               participant_mark = EXCLUDED.participant_mark""",
        [
            db_clock(cursor),
            seconds,
            params["mark"],
            params["pmark"],
            start,
            end,
            params.get("keep"),
            params.get("keep"),
        ],
    )
    cursor.execute(BUMP_SQL)  # the figures cache's key (reporting/cache.py)
    cursor.execute("DROP TABLE rb_aev")
