"""`manage.py import_payments FILE --channel bank`: post a channel's reconciliation CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bpjsportal.core import progress
from contributions.errors import ImportFileError
from contributions.imports import count_rows, import_payments
from contributions.models import RECEIVING_CHANNELS


class Command(BaseCommand):
    help = "Import a payment reconciliation CSV (format: docs/contributions.md). Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", type=Path, help="the channel's CSV (UTF-8, header as in docs/contributions.md)"
        )
        parser.add_argument(
            "--channel",
            required=True,
            choices=RECEIVING_CHANNELS,
            help="the channel that received the money (recorded on every payment)",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check every row as the import would (matched, duplicate, mismatched, refused) "
            "and report, posting nothing and saving no report",
        )
        progress.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        dry_run = options["dry_run"]
        with path.open("rb") as raw:
            try:
                bar = progress.Progress(
                    "import_payments" + (" (dry run)" if dry_run else ""),
                    enabled=options["progress"],
                    stream=self.stderr,
                )
                if bar.enabled:
                    bar.total = count_rows(raw)
                report = import_payments(
                    raw,
                    channel=options["channel"],
                    filename=path.name,
                    dry_run=dry_run,
                    progress=bar,
                )
                bar.finish()
            except ImportFileError as exc:
                raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(
            ("dry run, nothing posted: " if dry_run else "")
            + f"rows={report.rows} matched={report.matched} duplicate={report.duplicate} "
            f"unmatched={report.unmatched} amount_mismatch={report.amount_mismatch} "
            f"rejected={report.rejected}" + ("" if dry_run else f" report_id={report.pk}")
        )
        for problem in report.problems[:50]:
            self.stdout.write(
                f"  line {problem['line']} {problem['reference']}: "
                f"{problem['code']} {problem['message']}"
            )
