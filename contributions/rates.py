"""BPU rates: the seeded schedule, the income-level check and the one quote function.

Regulation facts (also in docs/architecture.md, "Regulation facts"):
- JKK 1 % of the declared income level and JKM Rp 6,800 a month: PP 44/2015 Lampiran II, as
  amended (latest PP 49/2023), the basic package every BPU participant pays.
- JHT 2 % of the declared income level, optional: PP 46/2015 with PP 60/2015.
- Income levels: PP 44/2015 Lampiran II maps bands of actual income to a base ("dasar penghasilan"):
  Rp 1,000,000; 1.2-2.6 M in steps of 200,000; 2.95-7.95 M in steps of 500,000; 8.7-19.7 M in steps
  of 1,000,000; Rp 20,700,000 for the top band (transcribed from BPJS's published "tabel iuran";
  the top level matches the published maximum JKK of Rp 207,000).
- PP 50/2025 (22 Dec 2025), Pasal 3-4: 50 % off JKK and JKM (not JHT) for BPU participants;
  transport workers Jan 2026-Mar 2027, other sectors Apr-Dec 2026 (CNBC Indonesia, 4 Feb 2026;
  Kemnaker press release 15 Jan 2026).
- Rounding: no rule is published; with these levels every amount is whole Rupiah. Should a future
  schedule produce fractions, amounts are rounded half up to whole Rupiah per programme and month.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from bpjsportal.core.api.errors import FieldError
from enrollment.errors import RegistrationError

from .models import IncomeLevel, RateDiscount, RateSchedule

PROGRAMMES = ("JKK", "JKM", "JHT")
REQUIRED_PROGRAMMES = ("JKK", "JKM")
MAX_MONTHS = 12

# The quote's refusals by code: the one home of these words (the field app's offline quote
# shows the same, contributions/field/reference.py).
QUOTE_MESSAGES = {
    "income_not_level": _(
        "Rp %(amount)s is not an income level of the schedule; nearest: %(near)s."
    ),
    "programmes_invalid": _("Programmes must be JKK and JKM, optionally JHT."),
    "months_out_of_range": _("Months must be between 1 and 12."),
}

SEED_SOURCE = (
    "PP 44/2015 Lampiran II as amended (JKK 1 %, JKM Rp 6,800, income levels); "
    "PP 46/2015 jo. PP 60/2015 (JHT 2 %)"
)


def _seed_bands() -> list[tuple[int, int, int | None]]:
    """(level, income_from, income_to) for PP 44/2015 Lampiran II."""
    bands: list[tuple[int, int, int | None]] = [(1_000_000, 0, 1_099_999)]
    for i in range(8):  # 1.1 M - 2.7 M in 200k bands
        low = 1_100_000 + i * 200_000
        bands.append((1_200_000 + i * 200_000, low, low + 199_999))
    for i in range(11):  # 2.7 M - 8.2 M in 500k bands
        low = 2_700_000 + i * 500_000
        bands.append((2_950_000 + i * 500_000, low, low + 499_999))
    for i in range(12):  # 8.2 M - 20.2 M in 1 M bands
        low = 8_200_000 + i * 1_000_000
        bands.append((8_700_000 + i * 1_000_000, low, low + 999_999))
    bands.append((20_700_000, 20_200_000, None))
    return bands


SEED_DISCOUNTS = [
    ("PP 50/2025", "transport", date(2026, 1, 1), date(2027, 3, 1)),
    ("PP 50/2025", "other", date(2026, 4, 1), date(2026, 12, 1)),
]
DISCOUNT_SOURCE = (
    "PP 50/2025 Pasal 3-4: 50 % of JKK and JKM for active and new BPU participants (not those "
    "funded by APBN/APBD); CNBC Indonesia 4 Feb 2026, Kemnaker press release 15 Jan 2026"
)


@transaction.atomic
def seed_rates() -> list[tuple[str, int]]:
    """Idempotently seed the 2015 schedule and the PP 50/2025 discount."""
    schedule, created = RateSchedule.objects.get_or_create(
        effective_from=date(2015, 7, 1),
        defaults={
            "jkk_rate_bp": 100,
            "jkm_monthly": 6_800,
            "jht_rate_bp": 200,
            "source": SEED_SOURCE,
        },
    )
    levels = 0
    if created or not schedule.levels.exists():
        IncomeLevel.objects.bulk_create(
            IncomeLevel(schedule=schedule, amount=a, income_from=lo, income_to=hi)
            for a, lo, hi in _seed_bands()
        )
        levels = len(_seed_bands())
    discounts = 0
    for name, sector, first, last in SEED_DISCOUNTS:
        _, made = RateDiscount.objects.get_or_create(
            name=name,
            sector=sector,
            defaults={
                "programmes": "JKK,JKM",
                "percent": 50,
                "first_month": first,
                "last_month": last,
                "source": DISCOUNT_SOURCE,
            },
        )
        discounts += made
    clear_rate_book()
    return [
        ("rate schedules", int(created)),
        ("income levels", levels),
        ("rate discounts", discounts),
    ]


def on_reference_data_loading(**_kwargs: Any) -> list[tuple[str, int]]:
    return seed_rates()


@dataclass(frozen=True, slots=True)
class ScheduleData:
    effective_from: date
    jkk_rate_bp: int
    jkm_monthly: int
    jht_rate_bp: int
    levels: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DiscountData:
    sector: str
    programmes: tuple[str, ...]
    percent: int
    first_month: date
    last_month: date
    excluded_payer_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class RateBook:
    """All schedules, levels and discounts: a few dozen rows, read on every quote."""

    schedules: tuple[ScheduleData, ...]  # ascending effective_from
    discounts: tuple[DiscountData, ...]

    def schedule_on(self, on: date) -> ScheduleData | None:
        i = bisect_right([s.effective_from for s in self.schedules], on)
        return self.schedules[i - 1] if i else None


_book: tuple[float, RateBook] | None = None


def rate_book() -> RateBook:
    """The rate tables, cached per process for settings.RATES_CACHE_SECONDS (default 60).

    Saving a schedule, level or discount clears this process's copy at once (signals in
    apps.py); other processes see a change within the cache time. Schedules are normally added
    ahead of their effective date, so the delay does not change a quote.
    """
    global _book
    ttl = float(getattr(settings, "RATES_CACHE_SECONDS", 60))
    now = time.monotonic()
    if _book is not None and now - _book[0] < ttl:
        return _book[1]
    levels: dict[int, list[int]] = {}
    for schedule_id, amount in IncomeLevel.objects.order_by("amount").values_list(
        "schedule_id", "amount"
    ):
        levels.setdefault(schedule_id, []).append(amount)
    book = RateBook(
        schedules=tuple(
            ScheduleData(s.effective_from, s.jkk_rate_bp, s.jkm_monthly, s.jht_rate_bp,
                         tuple(levels.get(s.pk, ())))
            for s in RateSchedule.objects.order_by("effective_from")
        ),
        discounts=tuple(
            DiscountData(d.sector, tuple(d.programme_list()), d.percent, d.first_month,
                         d.last_month, tuple(d.excluded_payer_list()))
            for d in RateDiscount.objects.all()
        ),
    )  # fmt: skip
    _book = (now, book)
    return book


def clear_rate_book(**_kwargs: Any) -> None:
    global _book
    _book = None


def schedule_on(on: date) -> ScheduleData:
    schedule = rate_book().schedule_on(on)
    if schedule is None:
        raise RegistrationError(
            [FieldError("declared_income", "no_rate_schedule", _("No rate schedule is in force."))]
        )
    return schedule


def income_levels(on: date) -> list[int]:
    return list(schedule_on(on).levels)


def nearest_levels(amount: int, levels: list[int]) -> list[int]:
    i = bisect_left(levels, amount)
    return levels[max(0, i - 1) : i + 1]


def check_declared_income(amount: int, on: date) -> None:
    """Raise RegistrationError(income_not_level) naming the nearest levels."""
    levels = income_levels(on)
    if amount in levels:
        return
    near = nearest_levels(amount, levels)
    raise RegistrationError(
        [
            FieldError(
                "declared_income",
                "income_not_level",
                QUOTE_MESSAGES["income_not_level"]
                % {
                    "amount": f"{amount:,}".replace(",", "."),
                    "near": ", ".join("Rp " + f"{n:,}".replace(",", ".") for n in near),
                },
            )
        ]
    )


@dataclass
class MonthQuote:
    month: date
    amounts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.amounts.values())


@dataclass
class Quote:
    declared_income: int
    programmes: list[str]
    months: list[MonthQuote] = field(default_factory=list)

    @property
    def per_programme(self) -> dict[str, int]:
        out = dict.fromkeys(self.programmes, 0)
        for m in self.months:
            for p, a in m.amounts.items():
                out[p] += a
        return out

    @property
    def total(self) -> int:
        return sum(m.total for m in self.months)

    @property
    def monthly(self) -> int:
        """The first month's total: what a participant pays a month at the quote date."""
        return self.months[0].total if self.months else 0


def _half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def add_months(month: date, n: int) -> date:
    total = month.year * 12 + month.month - 1 + n
    return date(total // 12, total % 12 + 1, 1)


class QuoteError(ValueError):
    def __init__(self, code: str, message: Any, nearest: list[int] | None = None) -> None:
        self.code, self.message, self.nearest = code, message, nearest or []
        super().__init__(f"{code}: {message}")


def quote_contribution(
    *,
    declared_income: int,
    programmes: list[str] | tuple[str, ...],
    months: int,
    first_month: date,
    sector: str = "other",
    payer_type: str = "self",
    sector_history: Sequence[tuple[date, str]] = (),
    apply_discounts: bool = True,
) -> Quote:
    """What `months` consecutive months from `first_month` cost, per programme and in total,
    for a participant of this occupation `sector` whose contribution `payer_type` pays
    (enrollment.PayerType): a discount applies in its months, to its sector, unless it
    excludes the payer type (PP 50/2025: budget-paid contributions pay the full rate).
    `sector_history` ((until_month, sector), ascending: enrollment.OccupationPeriod) gives the
    sector of the months before each until_month; later months take `sector` (the current
    occupation's): a month is priced by the occupation held in it. `apply_discounts=False`:
    the price without any discount (what a payment made before a discount was published cost).

    Raises QuoteError (codes: programmes_invalid, months_out_of_range, income_not_level).
    """
    chosen = [p for p in PROGRAMMES if p in set(programmes)]
    if set(programmes) - set(PROGRAMMES) or not set(REQUIRED_PROGRAMMES) <= set(chosen):
        raise QuoteError("programmes_invalid", QUOTE_MESSAGES["programmes_invalid"])
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise QuoteError("months_out_of_range", QUOTE_MESSAGES["months_out_of_range"])
    first = first_month.replace(day=1)
    try:
        check_declared_income(declared_income, first)
    except RegistrationError as exc:
        levels = income_levels(first)
        raise QuoteError(
            "income_not_level", exc.errors[0].message, nearest_levels(declared_income, levels)
        ) from exc
    last = add_months(first, months - 1)
    book = rate_book()
    discounts = [
        d
        for d in book.discounts
        if apply_discounts
        and d.first_month <= last
        and d.last_month >= first
        and payer_type not in d.excluded_payer_types
    ]
    quote = Quote(declared_income=declared_income, programmes=chosen)
    for i in range(months):
        month = add_months(first, i)
        schedule = book.schedule_on(month) or schedule_on(first)
        amounts = {
            "JKK": _half_up(declared_income * schedule.jkk_rate_bp, 10_000),
            "JKM": schedule.jkm_monthly,
        }
        if "JHT" in chosen:
            amounts["JHT"] = _half_up(declared_income * schedule.jht_rate_bp, 10_000)
        held = next((s for until, s in sector_history if month < until), sector)
        for d in discounts:
            if d.first_month <= month <= d.last_month and d.sector in ("", held):
                for p in d.programmes:
                    if p in amounts:
                        amounts[p] = _half_up(amounts[p] * (100 - d.percent), 100)
        quote.months.append(MonthQuote(month=month, amounts=amounts))
    return quote


def income_levels_or_empty(on: date) -> list[int]:
    schedule = rate_book().schedule_on(on)
    return list(schedule.levels) if schedule else []


def monthly_contribution_panel(participant: Any) -> dict[str, object]:
    """For the participant pages: what this participant pays for the current month."""
    from django.utils import timezone

    programmes = participant.programmes
    try:
        quote = quote_contribution(
            declared_income=participant.declared_income,
            programmes=programmes,
            months=1,
            first_month=timezone.localdate(),
            sector=participant.occupation.sector,
        )
    except QuoteError:
        return {"monthly_contribution": None}
    return {"monthly_contribution": quote.monthly, "monthly_quote": quote}
