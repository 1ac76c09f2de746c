"""`manage.py seed_demo`: demo branches, logins, partners and workers (idempotent).

Only with DEBUG on: the demo logins' password and TOTP key are published (README), so a
production database (DEBUG off) must never get them."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.dispatch import Signal

from enrollment.demo import seed_demo

# Higher apps add their demo data (payments, targets) on this signal.
demo_seeding = Signal()


class Command(BaseCommand):
    help = "Create demo logins and participants for `make run` (safe to run twice); DEBUG only."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--per-agent", type=int, default=40)

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo works only with DEBUG on: its logins have a published password and "
                "two-factor key (README), never for a production database. Nothing was written."
            )
        result = seed_demo(participants_per_agent=options["per_agent"])
        self.stdout.write(f"demo: {result}")
        for _receiver, extra in demo_seeding.send(sender=self.__class__):
            self.stdout.write(f"demo: {extra}")
