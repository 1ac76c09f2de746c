"""One group of provinces' build: a timed cursor, the split of the provinces into groups, and
the statements that turn a group into its rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from contributions import coverage as rules
from contributions import rules_sql
from contributions.rules_sql import T

from .sql_changes import (
    CALENDAR_SQL,
    CHANGES_SQL,
    ENTRIES_SQL,
    PARTICIPANTS_SQL,
    REVERSED_SQL,
)
from .sql_money import MONEY_SPLIT_VIEW, SOURCES_PREFIX, SPLIT_SQL, money_sql
from .sql_rows import (
    AGENT_GROUP_EVENTS_SQL,
    DEMOGRAPHIC_EVENTS_SQL,
    daily_events_sql,
    daily_insert_sql,
    demographic_insert_sql,
    events_view_sql,
)


class TimedCursor:
    """A cursor that keeps the time of each statement, for the build's log line."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.steps: list[tuple[str, float]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        started = time.monotonic()
        self.cursor.execute(sql, params)
        words = sql.split()
        name = words[3] if words[:3] == ["CREATE", "TEMP", "TABLE"] else " ".join(words[:3])
        self.steps.append((name, time.monotonic() - started))

    def execute_bound(self, sql: str, params: dict[str, Any]) -> None:
        """execute() with server-side binding: the parameters travel apart from the SQL text,
        each once (Django's psycopg cursors inline them into the text, which for the group's
        participant bitmap would be megabytes of SQL, in every statement log too)."""
        started = time.monotonic()
        with psycopg.Cursor(self.cursor.db.connection) as bound:
            bound.execute(sql, params)
        words = sql.split()
        self.steps.append((words[3], time.monotonic() - started))

    def executemany(self, sql: str, rows: Any) -> None:
        self.cursor.executemany(sql, rows)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self.cursor.fetchall())

    @property
    def rowcount(self) -> int:
        return int(self.cursor.rowcount)

    def report(self) -> str:
        """Seconds per step, summed over the province groups, in the order first run."""
        total: dict[str, float] = {}
        for name, seconds in self.steps:
            total[name] = total.get(name, 0.0) + seconds
        return ", ".join(f"{n} {s:.1f}s" for n, s in total.items() if s >= 0.05)


def members_bitmap(cursor: TimedCursor, pmark: int) -> bytes:
    """The group's participants (rb_pa) as a bitmap over participant ids 0..pmark, bit `id` of
    byte id // 8 (PostgreSQL's get_bit order): the join above tests each of the year's
    payments and ledger entries against it, a bit test instead of a hash probe (at 10 M
    participants, 156 M probes of a 1.5 M-entry hash table per group took ~50 s)."""
    bits = bytearray(pmark // 8 + 1)
    cursor.execute("SELECT pid FROM rb_pa")
    for (pid,) in cursor.fetchall():
        bits[pid >> 3] |= 1 << (pid & 7)
    return bytes(bits)


def province_chunks(end: datetime, pmark: int, size: int) -> list[tuple[str, str | None]]:
    """Split the provinces (in code order) into groups of about `size` participants, as code
    ranges [low, high) - the last one open - so that together they cover every province code,
    including one without participants (a chained row of the day before, say). A province is
    never split: every rollup key holds it, so the groups' rows are disjoint."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT province_id, count(*) FROM {T.participant}"  # noqa: S608
            " WHERE created_at < %s AND id <= %s GROUP BY province_id ORDER BY province_id",
            [end, pmark],
        )
        counts = cursor.fetchall()
    bounds = [""]
    held = 0
    for province, count in counts:
        if held and held + count > size:
            bounds.append(province)
            held = 0
        held += count
    return [(low, bounds[i + 1] if i + 1 < len(bounds) else None) for i, low in enumerate(bounds)]


GROUP_TABLES = ("rb_pa", "rb_entry", "rb_revpid", "rb_chg", "rb_money", "rb_split", "rb_ev",
                 "rb_dev")  # fmt: skip


@dataclass(frozen=True)
class Targets:
    """Where a group's rows go: the rollup tables themselves (a build in one session), or the
    staging tables that a parallel build's workers fill and its last transaction copies."""

    daily: str
    demographic: str
    agent_events: str


DIRECT = Targets("reporting_dailyrollup", "reporting_demographicrollup", "rb_aev_all")
STAGED = Targets("rb_stage_daily", "rb_stage_demographic", "rb_stage_agent_events")


def build_group(cursor: TimedCursor, params: dict[str, Any], targets: Targets) -> int:
    """The daily and demographic rows of one group of provinces (every day of the range), and
    its agent events into the accumulator; the group's temp tables are emptied and dropped at
    the end, so the next group reuses the space. Returns the DailyRollup rows written."""
    cursor.execute(PARTICIPANTS_SQL, params)
    cursor.execute("ANALYZE rb_pa")
    cursor.execute_bound(
        ENTRIES_SQL, {**params, "members": members_bitmap(cursor, params["pmark"])}
    )
    cursor.execute("ANALYZE rb_entry")
    cursor.execute(REVERSED_SQL, params)
    # Planner settings for two statements whose row counts it cannot know (measured at 10 M:
    # docs/benchmarks.md): the change rows group the entries by (participant, day) in the sort
    # their window needs anyway, rather than in a hash table that spills and then that sort;
    # the group events join the money rows to their split by a hash of the few split rows,
    # rather than by sorting the group's money rows.
    execute_planned(cursor, CHANGES_SQL, params, enable_hashagg="off")
    cursor.execute(money_sql(chunk=True), params)
    # A table created in this transaction is truncated in place: its disk space comes back now,
    # not at commit (at 10 M participants each of these is gigabytes of temp files).
    cursor.execute("TRUNCATE rb_entry")
    cursor.execute("ANALYZE rb_money")  # its row count: the split is a hash join, not a sort
    cursor.execute(SPLIT_SQL.format(table="rb_split", source="rb_money"))
    cursor.execute("ANALYZE rb_split")
    cursor.execute(
        "CREATE TEMP VIEW rb_money_split AS "
        + MONEY_SPLIT_VIEW.format(money="rb_money", split="rb_split", group=" m.gid, m.reg_day,")
    )
    cursor.execute(events_view_sql(params["start"]))
    execute_planned(cursor, daily_events_sql(), params, enable_mergejoin="off")
    cursor.execute(AGENT_GROUP_EVENTS_SQL.format(target=targets.agent_events), params)
    cursor.execute("TRUNCATE rb_money")  # grouped now: give the space back
    cursor.execute(daily_insert_sql(targets.daily), params)
    rows = cursor.rowcount
    cursor.execute(DEMOGRAPHIC_EVENTS_SQL, params)
    cursor.execute(demographic_insert_sql(targets.demographic), params)
    cursor.execute("DROP VIEW rb_money_split, rb_pev")
    tables = ", ".join(GROUP_TABLES)
    cursor.execute(f"TRUNCATE {tables}")
    cursor.execute(f"DROP TABLE {tables}")
    return rows


def execute_planned(cursor: TimedCursor, sql: str, params: dict[str, Any], **planner: str) -> None:
    """Run one statement with planner settings (SET LOCAL, set back after it)."""
    before = {}
    for name, value in planner.items():
        cursor.execute("SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value])
        before[name] = cursor.fetchall()[0][0]
    cursor.execute(sql, params)
    for name, value in before.items():
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def open_build(cursor: TimedCursor, params: dict[str, Any]) -> None:
    """The session settings, the status calendar (rb_nu) and the copies of the split's sources
    (sql_money.SOURCES) of a build's transaction; `close_build` drops the tables."""
    cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.ROLLUP_BUILD_WORK_MEM])
    cursor.execute(CALENDAR_SQL)
    cursor.executemany(
        "INSERT INTO rb_nu (nu, grace_from, lapsed_from) VALUES (%s, %s, %s)",
        rules.status_calendar(params["p"], params["e"]),
    )
    for sql in rules_sql.copy_split_sources(SOURCES_PREFIX):
        cursor.execute(sql)


def close_build(cursor: TimedCursor) -> None:
    """Drop what open_build made (they go at commit anyway; a build inside a caller's
    transaction must not leave them to the next one)."""
    cursor.execute("DROP TABLE rb_nu")
    cursor.execute(rules_sql.drop_split_sources(SOURCES_PREFIX))
