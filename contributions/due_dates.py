"""The working-day calendar of the due date: holidays as data, weekends by setting.

Rule (docs/architecture.md "Regulation facts"): a BPU month's contribution is due "paling lambat
tanggal 15 bulan Iuran yang bersangkutan. Apabila tanggal 15 jatuh pada hari libur, maka iuran
dibayarkan pada hari kerja berikutnya" (PP 44/2015 as reported by keuangan.kontan.co.id, citing
Kompas: "Siapa yang bayar iuran JKK BPJS Ketenagakerjaan"). So the *effective due date* of month M
is its due day (settings.BPU_DUE_DAY, 15) or, when that is not a working day, the next one.

- Holidays: `Holiday` rows - the national holidays and *cuti bersama* of the joint decree of the
  Minister of Religious Affairs, the Minister of Manpower and the Minister of State Apparatus
  (SKB 3 Menteri) of each year, seeded below, editable in the admin (every change audited).
- Weekends: the regulation says "hari libur" without defining it; government offices (BPJS's
  branches among the public services) work Monday-Friday under Perpres 21/2023 Pasal 3 (five
  working days a week; tribunnews.com 15 Apr 2023, DDTCNews 14 Apr 2023), so Saturday and Sunday
  count as non-working days: settings.BPU_DUE_SKIPS_WEEKENDS, default True. Our reading of the
  rule, not a BPJS statement: docs/architecture.md marks it "not verified".

The calendar is cached per process like the rate book (settings.RATES_CACHE_SECONDS); saving or
deleting a holiday clears this process's copy at once (apps.py), other processes within the
cache time. Every rule that needs a due date asks `due_date(month)` here: coverage (overdue,
grace, lapse), the reminders' "due in N days", autodebit's charging window, the follow-up queue
and the rollups (through coverage), and the SQL refresh (through `due_dates_param`).
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from .models import Holiday
from .rates import add_months

# The first month the SQL form of the due dates covers (rules_sql.due_date): every start month
# and paid-through month the portal holds is later (BPJS Ketenagakerjaan's BPU programme began
# under PP 44/2015; Jamsostek's informal-worker scheme from 2006). A month before it falls back
# to the plain due day, in SQL and in tests alike.
SQL_FIRST_MONTH = date(2000, 1, 1)

SKB_2026 = (
    "SKB Menteri Agama, Menteri Ketenagakerjaan dan Menteri PANRB Nomor 1497 Tahun 2025, Nomor 2 "
    "Tahun 2025, Nomor 5 Tahun 2025 tentang Hari Libur Nasional dan Cuti Bersama Tahun 2026 "
    "(17 holidays, 8 cuti bersama; garuda.tv and bali.disway.id lists, kontan.co.id 16 Jan 2026)"
)
FIXED_2027 = (
    "Fixed-date national holidays (Keppres 251/1967 on hari-hari libur as amended, latest Keppres "
    "8/2024; 1 May: Perpres 24/2013; 1 June: Keppres 24/2016). The moving holidays and cuti "
    "bersama of 2027 wait for the SKB 3 Menteri for 2027, which we could not retrieve: add them "
    "in the admin when it is published."
)
N, C = Holiday.Kind.NATIONAL, Holiday.Kind.COLLECTIVE_LEAVE
SEED_HOLIDAYS: list[tuple[date, str, str, str]] = [
    (date(2026, 1, 1), "Tahun Baru 2026 Masehi", N, SKB_2026),
    (date(2026, 1, 16), "Isra Mikraj Nabi Muhammad SAW", N, SKB_2026),
    (date(2026, 2, 16), "Cuti bersama Tahun Baru Imlek", C, SKB_2026),
    (date(2026, 2, 17), "Tahun Baru Imlek 2577 Kongzili", N, SKB_2026),
    (date(2026, 3, 18), "Cuti bersama Hari Suci Nyepi", C, SKB_2026),
    (date(2026, 3, 19), "Hari Suci Nyepi (Tahun Baru Saka 1948)", N, SKB_2026),
    (date(2026, 3, 20), "Cuti bersama Idulfitri 1447 H", C, SKB_2026),
    (date(2026, 3, 21), "Idulfitri 1447 H", N, SKB_2026),
    (date(2026, 3, 22), "Idulfitri 1447 H", N, SKB_2026),
    (date(2026, 3, 23), "Cuti bersama Idulfitri 1447 H", C, SKB_2026),
    (date(2026, 3, 24), "Cuti bersama Idulfitri 1447 H", C, SKB_2026),
    (date(2026, 4, 3), "Wafat Yesus Kristus", N, SKB_2026),
    (date(2026, 4, 5), "Kebangkitan Yesus Kristus (Paskah)", N, SKB_2026),
    (date(2026, 5, 1), "Hari Buruh Internasional", N, SKB_2026),
    (date(2026, 5, 14), "Kenaikan Yesus Kristus", N, SKB_2026),
    (date(2026, 5, 15), "Cuti bersama Kenaikan Yesus Kristus", C, SKB_2026),
    (date(2026, 5, 27), "Iduladha 1447 H", N, SKB_2026),
    (date(2026, 5, 28), "Cuti bersama Iduladha 1447 H", C, SKB_2026),
    (date(2026, 5, 31), "Hari Raya Waisak 2570 BE", N, SKB_2026),
    (date(2026, 6, 1), "Hari Lahir Pancasila", N, SKB_2026),
    (date(2026, 6, 16), "1 Muharam Tahun Baru Islam 1448 H", N, SKB_2026),
    (date(2026, 8, 17), "Proklamasi Kemerdekaan Republik Indonesia", N, SKB_2026),
    (date(2026, 8, 25), "Maulid Nabi Muhammad SAW", N, SKB_2026),
    (date(2026, 12, 24), "Cuti bersama Kelahiran Yesus Kristus", C, SKB_2026),
    (date(2026, 12, 25), "Kelahiran Yesus Kristus", N, SKB_2026),
    (date(2027, 1, 1), "Tahun Baru 2027 Masehi", N, FIXED_2027),
    (date(2027, 5, 1), "Hari Buruh Internasional", N, FIXED_2027),
    (date(2027, 6, 1), "Hari Lahir Pancasila", N, FIXED_2027),
    (date(2027, 8, 17), "Proklamasi Kemerdekaan Republik Indonesia", N, FIXED_2027),
    (date(2027, 12, 25), "Kelahiran Yesus Kristus", N, FIXED_2027),
]


@transaction.atomic
def seed_holidays() -> list[tuple[str, int]]:
    """Idempotently add the seeded days; a day an admin edited or removed is not touched again
    unless missing (a removed seeded day comes back on the next load: remove it from SEED too)."""
    existing = set(Holiday.objects.values_list("day", flat=True))
    made = Holiday.objects.bulk_create(
        Holiday(day=d, name=name, kind=kind, source=source)
        for d, name, kind, source in SEED_HOLIDAYS
        if d not in existing
    )
    clear_calendar()
    return [("holidays", len(made))]


def on_reference_data_loading(**_kwargs: Any) -> list[tuple[str, int]]:
    return seed_holidays()


_cached: tuple[float, frozenset[date]] | None = None


def holidays() -> frozenset[date]:
    """Every holiday day, cached per process for settings.RATES_CACHE_SECONDS."""
    global _cached
    ttl = float(getattr(settings, "RATES_CACHE_SECONDS", 60))
    now = time.monotonic()
    if _cached is not None and now - _cached[0] < ttl:
        return _cached[1]
    days = frozenset(Holiday.objects.values_list("day", flat=True))
    _cached = (now, days)
    return days


def clear_calendar(**_kwargs: Any) -> None:
    global _cached
    _cached = None


def skips_weekends() -> bool:
    return bool(getattr(settings, "BPU_DUE_SKIPS_WEEKENDS", True))


def due_day() -> int:
    value = int(getattr(settings, "BPU_DUE_DAY", 15))
    if not 1 <= value <= 28:  # every month has the day, so no month-end clamping is needed
        raise ImproperlyConfigured("BPU_DUE_DAY must be between 1 and 28")
    return value


def is_working_day(day: date) -> bool:
    if skips_weekends() and day.isoweekday() >= 6:
        return False
    return day not in holidays()


def due_date(month: date) -> date:
    """The effective due date of the contribution for `month` (any day of it): the due day, or
    the next working day when the due day is a holiday (or a weekend, by setting). With a late
    due day (BPU_DUE_DAY 28) it can fall in the next month; the callers allow for that."""
    day = month.replace(day=due_day())
    off = holidays()
    weekends = skips_weekends()
    for _i in range(31):
        if not ((weekends and day.isoweekday() >= 6) or day in off):
            return day
        day += timedelta(days=1)
    raise ImproperlyConfigured(f"no working day within 31 days of the due day of {month:%Y-%m}")


def month_due_on(day: date) -> date | None:
    """The month whose effective due date is `day`, or None (a due date is the due day of its
    month or a few days later, so only `day`'s month and the one before can have it)."""
    this = day.replace(day=1)
    for month in (this, add_months(this, -1)):
        if due_date(month) == day:
            return month
    return None


def due_dates_param(last: date) -> list[date]:
    """The effective due dates of every month from SQL_FIRST_MONTH to `last`'s month, in order:
    the array rules_sql.due_date reads (bound as a parameter, so the SQL and this module agree by
    construction and tests prove the fragment reads it right)."""
    out = []
    month = SQL_FIRST_MONTH
    while month <= last:
        out.append(due_date(month))
        month = add_months(month, 1)
    return out
