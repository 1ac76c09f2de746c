"""`manage.py check_ledger`: prove the denormalised Coverage rows agree with the ledger.

Exits non-zero (CommandError) on any mismatch."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from contributions.ledger import check_coverage


class Command(BaseCommand):
    help = "Check every Coverage row against the ledger (paid-through, runs, balance, status)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--as-of", type=date.fromisoformat, default=None)
        parser.add_argument(
            "--skip-status", action="store_true", help="do not compare the stored status"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = None if options["skip_status"] else options["as_of"] or timezone.localdate()
        problems = 0
        for mismatch in check_coverage(as_of=as_of):
            problems += 1
            if problems <= 100:
                self.stderr.write(
                    f"participant {mismatch.participant_id}: {mismatch.field} stored="
                    f"{mismatch.stored} ledger={mismatch.derived}"
                )
        if problems:
            raise CommandError(f"{problems} mismatch(es) between coverage and ledger")
        self.stdout.write("ledger and coverage agree")
