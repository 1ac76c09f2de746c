"""The Perisai commission rules in force, as reference data: `load_reference_data` (and so
`make run`, the deploy steps and the tests' reference-data fixtures) creates a missing rule row;
an existing row is left as an administrator may have edited it. Migration 0024 seeded the same
row once (a migration is a frozen snapshot; this module is the living copy).

Sources (docs/contributions.md, "Perisai commissions", says what is verified): Perdir BPJS
Ketenagakerjaan 13/PERDIR.02/042022 as quoted in "908 - Probis Kepesertaan" p. 67
(http://online.flipbuilder.com/kduhm/fxda/files/basic-html/page67.html); the Rp15,000 fee for
JKK + JKM + JHT from the "Sosialisasi New Perisai" deck (April 2022) and perisai.sdsi.co.id.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from .models import CommissionRule

SOURCE = (
    "Perdir BPJS Ketenagakerjaan 13/PERDIR.02/042022 (insentif Perisai), as quoted in "
    '"908 - Probis Kepesertaan" p. 67: Rp10.000 per new participant of JKK and JKM; 15% of '
    "contributions received for membership months 1-24, 5% for months 25-60 (counted from the "
    "acquisition by the Perisai); Kantor Perisai 10% of its Perisai's incentive; the acquisition "
    "fee only with at least 25 new participants a month whose NIK was never registered in the BPU "
    'segment; paid by the 5th of the next month. Rp15.000 for JKK+JKM+JHT: "Sosialisasi New '
    'Perisai" (April 2022) and perisai.sdsi.co.id.'
)
VERIFICATION = (
    "Verified against the quoted text (p. 67): JKK+JKM fee, minimum 25 new NIKs, 15%/5% bands, "
    "office 10%, paid by the 5th. Less verified (secondary sources only, the page before p. 67 "
    "was not seen): the Rp15.000 JKK+JKM+JHT fee. Not found: the Perdir's own text."
)
RULES: list[dict[str, Any]] = [
    {
        "effective_from": date(2022, 4, 1),
        "name": "Perdir 13/PERDIR.02/042022",
        "fee_jkk_jkm": 10_000,
        "fee_with_jht": 15_000,
        "min_new_niks": 25,
        "band1_last_month": 24,
        "band1_rate_bp": 1_500,
        "band2_last_month": 60,
        "band2_rate_bp": 500,
        "office_share_bp": 1_000,
        "pay_by_day": 5,
        "source": SOURCE,
        "source_url": "http://online.flipbuilder.com/kduhm/fxda/files/basic-html/page67.html",
        "verification": VERIFICATION,
    },
]


def seed_rules() -> int:
    created = 0
    for rule in RULES:
        fields = dict(rule)
        _row, made = CommissionRule.objects.get_or_create(
            effective_from=fields.pop("effective_from"), defaults=fields
        )
        created += int(made)
    return created


def on_reference_data_loading(**_kwargs: Any) -> list[tuple[str, int]]:
    return [("commission rules", seed_rules())]
