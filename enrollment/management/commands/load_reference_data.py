"""`manage.py load_reference_data`: regions, NIK prefixes, occupations, and (via a hook) rates.

Idempotent: a second run changes nothing and says so.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand
from django.dispatch import Signal

from enrollment import reference_data

# Higher apps (contributions: rate schedules) load their reference data on this signal.
reference_data_loading = Signal()


class Command(BaseCommand):
    help = "Load Kemendagri regions, NIK prefixes, BPU occupations and rate schedules (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        steps = [
            ("regions", reference_data.load_regions),
            ("NIK prefixes", reference_data.load_nik_prefixes),
            ("occupations", reference_data.load_occupations),
        ]
        for label, step in steps:
            changed = step()
            self.stdout.write(f"{label}: {changed} rows added or changed")
        for _receiver, result in reference_data_loading.send(sender=self.__class__):
            extra: list[tuple[str, int]] = result or []  # type: ignore[assignment]
            for extra_label, extra_changed in extra:
                self.stdout.write(f"{extra_label}: {extra_changed} rows added or changed")
        self.stdout.write(
            self.style.SUCCESS(f"reference data loaded in {time.monotonic() - started:.1f}s")
        )
