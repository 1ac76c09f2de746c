"""Compute (or recompute) the draft commission statements of a month; by default last month,
the run that precedes the payout by the 5th (Perdir 13/PERDIR.02/042022). Thin: calls
contributions.commissions.services.compute_month. Schedule it early on the 1st (cron or beat)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from contributions.commissions.services import CommissionError, compute_month, parse_month
from contributions.coverage import month_start
from contributions.rates import add_months


class Command(BaseCommand):
    help = "Compute the draft Perisai commission statements of a month (default: last month)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--month", help="YYYY-MM (default: last month)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options.get("month"):
                month = parse_month(options["month"])
            else:
                month = add_months(month_start(timezone.localdate()), -1)
            result = compute_month(month=month)
        except CommissionError as exc:
            raise CommandError(str(exc.message)) from exc
        self.stdout.write(
            f"{result.month:%Y-%m}: {result.agent_statements} agent and "
            f"{result.office_statements} office draft statements, {result.lines} lines"
        )
