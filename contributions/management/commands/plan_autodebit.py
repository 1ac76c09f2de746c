"""`manage.py plan_autodebit [--day YYYY-MM-DD]`: what the beat does twice a day - create the
charges of the month due soon and queue every charge due that day for the workers. Safe to run
again at any time (after a channel's outage, say): it adds no charge twice and a charge queued
twice is charged once (contributions/autodebit.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contributions import autodebit


class Command(BaseCommand):
    help = "Create the due autodebit charges and queue them for the workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--day", default="", help="the day to plan (default today)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            day = date.fromisoformat(options["day"]) if options["day"] else None
        except ValueError as exc:
            raise CommandError("--day must be a date, YYYY-MM-DD") from exc
        result = autodebit.plan(day=day)
        self.stdout.write(
            f"period {result.period or '-'}: {result.created} charges created, {result.due} due, "
            f"{result.batches} batches queued"
        )
