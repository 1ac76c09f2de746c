"""`manage.py relay_outbox`: publish the outbox rows (tasks queued by requests while Redis was
down, or not yet relayed) to the broker. Safe to run at any time and next to the beat task: rows
are taken with SKIP LOCKED and marked published. Exits non-zero while the broker is down."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from contributions.messaging.outbox import relay


class Command(BaseCommand):
    help = "Publish pending outbox messages to the Celery broker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=None, help="at most this many messages")

    def handle(self, *args: Any, **options: Any) -> None:
        result = relay(limit=options["limit"])
        self.stdout.write(
            f"published {result.published}, pending {result.pending}, "
            f"deleted {result.deleted} old published"
        )
        if result.broker_down:
            raise CommandError(
                f"the broker is unavailable; {result.pending} message(s) wait in the outbox"
            )
