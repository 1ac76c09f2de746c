"""`manage.py rebuild_rollups --from 2024-01-01 --to 2024-12-31`: rebuild any range of days.

Progress on stderr (docs/operations.md, "Long commands"; on a terminal, or --progress): a line
as each phase starts (the groups of provinces, the agent and province rows, the cohorts, the
vacuum, the cache warm-up) and as each group of provinces is built, with the ETA.
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from bpjsportal.core import progress
from reporting import warming
from reporting.rollups import rebuild_rollups
from reporting.rollups.progress import BuildProgress


class PrintedProgress(BuildProgress):
    """The build's phases and groups as progress lines (bpjsportal/core/progress.py): a line
    per phase with the time so far, and one per group of provinces built (a group takes
    minutes at national scale, and there are few: ROLLUP_BUILD_CHUNK)."""

    def __init__(self, bar: progress.Progress, stream: Any) -> None:
        self.bar, self.stream = bar, stream

    def phase(self, text: str) -> None:
        if self.bar.enabled:
            elapsed = int(time.monotonic() - self.bar.started)
            clock = f"{elapsed // 3600}:{elapsed % 3600 // 60:02d}:{elapsed % 60:02d}"
            self.stream.write(f"{self.bar.label}: {text} (at {clock})\n")

    def groups(self, total: int) -> None:
        self.bar.total = total

    def group_built(self) -> None:
        self.bar.advance()


class Command(BaseCommand):
    help = "Rebuild the daily reporting rollups for a range of days from the ledger (set-based)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", help="last day, YYYY-MM-DD (default today)")
        progress.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        bar = progress.Progress(
            "rebuild_rollups",
            unit="groups of provinces",
            enabled=options["progress"],
            stream=self.stderr,
            every=0,  # a line per group
        )
        shown = PrintedProgress(bar, self.stderr)
        try:
            start = date.fromisoformat(options["start"])
            end = date.fromisoformat(options["end"]) if options["end"] else timezone.localdate()
            result = rebuild_rollups(start=start, end=end, progress=shown)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"rollups: {result.days} days, {result.rows} rows in {result.seconds:.1f}s"
            )
        )
        shown.phase("vacuum of the rollup tables")
        self.stdout.write(f"rollup tables: {vacuum()}")
        shown.phase("dashboard cache warm-up")
        warmed = warming.warm()
        self.stdout.write(f"dashboard cache: {warmed} entries warmed")
        bar.finish()


ROLLUP_TABLES = ("reporting_dailyrollup", "reporting_provincerollup",
                 "reporting_demographicrollup", "reporting_agentrollup")  # fmt: skip


def vacuum() -> str:
    """VACUUM (ANALYZE) the rollup tables: a rebuild replaces the range's rows, so a year's
    rebuild leaves as many dead rows as live ones (17.6 M at 10 M participants), which the
    dashboard's first readers would otherwise wade through until autovacuum comes by. VACUUM
    cannot run inside a transaction; there (tests) it is left to autovacuum."""
    if connection.in_atomic_block:
        return "vacuum left to autovacuum (inside a transaction)"
    started = time.monotonic()
    with connection.cursor() as cursor:
        # VACUUM by a role that does not own a table only warns and skips it
        cursor.execute(
            "SELECT bool_and(pg_has_role(relowner, 'USAGE')) FROM pg_class"
            " WHERE oid = ANY(%s::regclass[])",
            [list(ROLLUP_TABLES)],
        )
        row = cursor.fetchone()
        if not (row and row[0]):
            return "vacuum left to autovacuum (this database role does not own the tables)"
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(ROLLUP_TABLES)}")
    return f"vacuumed and analysed in {time.monotonic() - started:.1f}s"
