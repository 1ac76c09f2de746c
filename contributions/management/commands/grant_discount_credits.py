"""`manage.py grant_discount_credits [--apply]`: credit what participants paid for months a
discount later covered (PP 50/2025 Pasal 4: the excess counts toward the following months) and
post the months the credit pays (contributions/credits.py). A dry run unless --apply; a second
run changes nothing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from contributions import credits


class Command(BaseCommand):
    help = "Grant PP 50/2025 credits for months paid at the full rate (dry run first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="grant and post the months")

    def handle(self, *args: Any, **options: Any) -> None:
        findings = credits.find()
        todo = [f for f in findings if f.credit > 0]
        self.stdout.write(
            f"{len(todo)} payment(s), Rp {sum(f.credit for f in todo)} to credit; "
            f"{len(findings) - len(todo)} to review"
        )
        for f in findings:
            if f.problem:
                self.stdout.write(
                    f"review: payment {f.payment.pk} ({f.payment.channel}:{f.payment.reference})"
                    f" Rp {f.paid}: {f.problem}"
                )
        if not options["apply"]:
            self.stdout.write("dry run: nothing written; add --apply")
            return
        grants, months = credits.apply(findings)
        self.stdout.write(f"granted {grants} credit(s); {months} month(s) paid from credit")
