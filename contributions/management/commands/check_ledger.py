"""`manage.py check_ledger`: prove the denormalised Coverage rows agree with the ledger.

Exits non-zero (CommandError) on any mismatch."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from bpjsportal.core import progress
from contributions.ledger import check_coverage
from contributions.models import Coverage


class Command(BaseCommand):
    help = "Check every Coverage row against the ledger (paid-through, runs, balance, status)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of",
            type=date.fromisoformat,
            default=None,
            help="the day (YYYY-MM-DD) the stored status is checked for (default: today, Jakarta)",
        )
        parser.add_argument(
            "--skip-status", action="store_true", help="do not compare the stored status"
        )
        progress.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = None if options["skip_status"] else options["as_of"] or timezone.localdate()
        bar = progress.Progress(
            "check_ledger", unit="participants", enabled=options["progress"], stream=self.stderr
        )
        if bar.enabled:
            bar.total = Coverage.objects.count()
        problems = 0
        for mismatch in check_coverage(as_of=as_of, progress=bar):
            problems += 1
            if problems <= 100:
                self.stderr.write(
                    f"participant {mismatch.participant_id}: {mismatch.field} stored="
                    f"{mismatch.stored} ledger={mismatch.derived}"
                )
        bar.finish()
        if problems:
            raise CommandError(f"{problems} mismatch(es) between coverage and ledger")
        self.stdout.write("ledger and coverage agree")
