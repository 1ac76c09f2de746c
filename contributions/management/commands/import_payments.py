"""`manage.py import_payments FILE --channel bank`: post a channel's reconciliation CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contributions.errors import ImportFileError
from contributions.imports import import_payments
from contributions.models import RECEIVING_CHANNELS


class Command(BaseCommand):
    help = "Import a payment reconciliation CSV (format: docs/contributions.md). Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--channel", required=True, choices=RECEIVING_CHANNELS)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        with path.open("rb") as raw:
            try:
                report = import_payments(raw, channel=options["channel"], filename=path.name)
            except ImportFileError as exc:
                raise CommandError(f"{exc.code}: {exc.message}") from exc
        self.stdout.write(
            f"rows={report.rows} matched={report.matched} duplicate={report.duplicate} "
            f"unmatched={report.unmatched} amount_mismatch={report.amount_mismatch} "
            f"rejected={report.rejected} report_id={report.pk}"
        )
        for problem in report.problems[:50]:
            self.stdout.write(
                f"  line {problem['line']} {problem['reference']}: "
                f"{problem['code']} {problem['message']}"
            )
