"""Load the NIKs already registered in the BPU segment before (an extract of BPJS's information
system: a CSV with the columns `nik,first_registered_on` (YYYY-MM-DD)). Only each NIK's keyed
digest is stored (contributions.commissions.models.PriorBpuNik); a participant registered with
such a NIK after that day earns no acquisition fee. Idempotent: a NIK already loaded keeps its
earliest day. After an HMAC key rotation (rotate_nik_keys --rehash) load the extract again."""

from __future__ import annotations

import csv
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from contributions.commissions.models import PriorBpuNik
from enrollment import pii


class Command(BaseCommand):
    help = "Load NIKs registered in the BPU segment before (CSV: nik,first_registered_on)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the extract (CSV: nik,first_registered_on)")
        parser.add_argument(
            "--source",
            default="bpjs-extract",
            help="a label stored with each NIK (the extract's name)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rows: dict[bytes, date] = {}
        with open(options["path"], newline="", encoding="utf-8-sig") as f:
            for number, row in enumerate(csv.DictReader(f), start=2):
                nik = (row.get("nik") or "").strip()
                if len(nik) != 16 or not nik.isascii() or not nik.isdigit():
                    raise CommandError(f"line {number}: a NIK is 16 digits")
                try:
                    day = date.fromisoformat((row.get("first_registered_on") or "").strip())
                except ValueError:
                    raise CommandError(
                        f"line {number}: first_registered_on is YYYY-MM-DD"
                    ) from None
                digest = pii.nik_digest(nik)
                rows[digest] = min(day, rows.get(digest, day))
        with transaction.atomic():
            for digest, day in rows.items():
                obj, created = PriorBpuNik.objects.get_or_create(
                    nik_digest=digest,
                    defaults={"first_registered_on": day, "source": options["source"]},
                )
                if not created and day < obj.first_registered_on:
                    obj.first_registered_on = day
                    obj.save(update_fields=["first_registered_on"])
        self.stdout.write(f"{len(rows)} NIKs loaded")
