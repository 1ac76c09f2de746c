"""`manage.py correct_budget_payments [--apply] [--sponsor CODE]`: find budget-paid payments
(APBD, APBN, village fund) posted at the PP 50/2025 discounted price and post one receivable
ledger entry per payment for the difference (contributions/corrections.py). A dry run unless
--apply; reports per sponsor; a second run changes nothing."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from contributions import corrections


class Command(BaseCommand):
    help = "Correct budget-paid payments priced with the PP 50/2025 discount (dry run first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="post the receivables")
        parser.add_argument("--sponsor", help="only this partner's payments (its code)")

    def handle(self, *args: Any, **options: Any) -> None:
        findings = corrections.find(sponsor_code=options["sponsor"])
        self.stdout.write("sponsor\tpayer_type\tpayments\treceivable_rp\tto_review")
        for (sponsor, payer_type), (n, rupiah, review) in corrections.by_sponsor(findings).items():
            self.stdout.write(f"{sponsor}\t{payer_type}\t{n}\t{rupiah}\t{review}")
        for f in findings:
            if f.problem:
                self.stdout.write(
                    f"review: payment {f.payment.pk} ({f.payment.channel}:{f.payment.reference})"
                    f" Rp {f.charged}: {f.problem}"
                )
        if not options["apply"]:
            todo = sum(1 for f in findings if f.receivable > 0)
            self.stdout.write(f"dry run: {todo} receivable(s) would be posted; add --apply")
            return
        posted = corrections.apply(findings)
        self.stdout.write(f"posted {posted} receivable(s)")
