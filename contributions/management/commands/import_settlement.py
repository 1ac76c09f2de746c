"""`manage.py import_settlement FILE --channel NAME`: reconcile a payment channel's daily
settlement file against its notifications (contributions/settlement.py). Idempotent."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contributions.errors import ImportFileError
from contributions.settlement import import_settlement, report_csv
from enrollment.models import ApiClient


class Command(BaseCommand):
    help = (
        "Reconcile a channel's settlement CSV (reference,code,amount,paid_at) against its "
        "bill notifications: matched, recorded now, missing on either side. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the channel's settlement file (CSV)")
        parser.add_argument(
            "--channel", required=True, help="the channel's API client name (create_api_client)"
        )
        parser.add_argument(
            "--date", type=date.fromisoformat, help="settlement day (default: the rows' day)"
        )
        parser.add_argument("--csv", type=Path, help="also write the report to this CSV file")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        client = ApiClient.objects.filter(
            name=options["channel"], scope=ApiClient.Scope.CHANNEL, revoked_at__isnull=True
        ).first()
        if client is None:
            raise CommandError(f"No active channel API client named {options['channel']!r}")
        with path.open("rb") as raw:
            try:
                settlement, new = import_settlement(
                    raw, client=client, filename=path.name, day=options["date"]
                )
            except ImportFileError as exc:
                raise CommandError(f"{exc.code}: {exc.message}") from exc
        if not new:
            self.stdout.write(f"already imported (report {settlement.pk}): nothing changed")
        self.stdout.write(
            f"day={settlement.day} rows={settlement.rows} matched={settlement.matched} "
            f"recorded={settlement.recorded} missing_theirs={settlement.missing_theirs} "
            f"problems={settlement.problems} report_id={settlement.pk}"
        )
        for line in settlement.lines.exclude(outcome="matched").order_by("line", "id")[:50]:
            where = f"line {line.line}" if line.line else "not in file"
            self.stdout.write(f"  {where} {line.reference}: {line.outcome} {line.detail}".rstrip())
        if options["csv"]:
            options["csv"].write_bytes(report_csv(settlement))
