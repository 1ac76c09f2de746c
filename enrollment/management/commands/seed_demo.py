"""`manage.py seed_demo`: the demo of `make run` - logins, workers with 18 months of history,
payments, statements, follow-up, rollups and targets (enrollment/demo.py's ordered steps).

Safe to run twice: a step whose data is there is skipped. Only with DEBUG on: the demo logins'
password and TOTP key are published (README), so a production database (DEBUG off) must never
get them."""

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from enrollment.demo import DEMO_MONTHS, DEMO_SEED, DemoContext, DemoStep, default_workers, run_demo


class Command(BaseCommand):
    help = (
        "Create the demo for `make run`: logins, workers of the national shape with months of "
        "history, payments, rollups (safe to run twice); DEBUG only."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="workers to register (default settings.DEMO_WORKERS: 20000), on an empty database",
        )
        parser.add_argument(
            "--months", type=int, default=DEMO_MONTHS, help="months of registrations before today"
        )
        parser.add_argument("--seed", type=int, default=DEMO_SEED, help="random seed")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo works only with DEBUG on: its logins have a published password and "
                "two-factor key (README), never for a production database. Nothing was written."
            )
        workers = default_workers() if options["workers"] is None else options["workers"]
        if workers < 0 or not 1 <= options["months"] <= 120:
            raise CommandError("--workers must be 0 or more and --months 1 to 120.")
        ctx = DemoContext(
            today=timezone.localdate(),
            workers=workers,
            months=options["months"],
            seed=options["seed"],
        )
        started = time.monotonic()

        def report(step: DemoStep, result: dict[str, int], seconds: float) -> None:
            self.stdout.write(f"demo: {step.name}: {result} ({seconds:.1f} s)")

        run_demo(ctx, report=report)
        self.stdout.write(f"demo: ready in {time.monotonic() - started:.1f} s")
