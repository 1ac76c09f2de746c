"""Coverage status rules: one place, pure functions of the paid-through month and a date.

Sources (also docs/contributions.md):
- Due day: a BPU month's contribution is paid "paling lambat tanggal 15 bulan Iuran yang
  bersangkutan" (PP 44/2015 as reported by Kontan) -> settings.BPU_DUE_DAY, default 15; on a
  holiday (or weekend) the next working day: the month's *due date*, due_dates.due_date.
- Grace: arrears may be paid for at most 3 months from the end of cover; after more than 3
  unpaid months the membership is inactive (Perdir 22/PERDIR.02/072022; BPJS branch statements,
  media.alkhairaat.id, 23 Jul 2025) -> settings.BPU_GRACE_MONTHS, default 3.
- BPU participants pay no late fine, so arrears are exactly the quoted months.
- Reactivation after a lapse covers from the month paid; the lapsed months are not back-covered.

Definitions (as of a date D, M = the first day of D's month):
- next unpaid month N = paid_through + 1 month, or the registration month if never paid;
- a month is *overdue* once its due date (due_dates.due_date) has passed;
- active: N > M (the current month is paid);
- lapsed: more than `grace` months are overdue, i.e. D is on or after `lapse_date(N)`
  = the day after the due date of month N + grace;
- grace: otherwise (current month unpaid, due soon or overdue within the grace period).
A new participant who never paid is in grace from registration and lapses like anyone whose
first unpaid month is the registration month.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from . import due_dates
from .models import CoverageStatus
from .rates import add_months

ACTIVE, GRACE, LAPSED = CoverageStatus.ACTIVE, CoverageStatus.GRACE, CoverageStatus.LAPSED


due_day = due_dates.due_day
due_date = due_dates.due_date


def grace_months() -> int:
    value = int(getattr(settings, "BPU_GRACE_MONTHS", 3))
    if value < 0:
        raise ImproperlyConfigured("BPU_GRACE_MONTHS must not be negative")
    return value


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_between(first: date, last: date) -> int:
    """Whole months from `first`'s month to `last`'s month (negative if last is earlier)."""
    return (last.year - first.year) * 12 + last.month - first.month


def next_unpaid(paid_through: date | None, start_month: date) -> date:
    return add_months(paid_through, 1) if paid_through else month_start(start_month)


def last_overdue_month(as_of: date) -> date:
    """The latest month whose due date has passed on `as_of`."""
    month = month_start(as_of)
    while as_of <= due_date(month):  # at most twice: a due date is in its month or just after
        month = add_months(month, -1)
    return month


def arrears_months(paid_through: date | None, start_month: date, as_of: date) -> int:
    """How many months are overdue (0 when nothing is, including paid in advance)."""
    first = next_unpaid(paid_through, start_month)
    return max(0, months_between(first, last_overdue_month(as_of)) + 1)


def lapse_date(first_unpaid: date) -> date:
    """The first day a participant whose first unpaid month is `first_unpaid` counts as lapsed."""
    return due_date(add_months(first_unpaid, grace_months())) + timedelta(days=1)


def lapse_threshold(as_of: date) -> date:
    """Lapsed on `as_of` <=> first unpaid month <= this month (the set-based form of the rule)."""
    return add_months(last_overdue_month(as_of), -grace_months())


def status_for(*, paid_through: date | None, start_month: date, as_of: date) -> str:
    first = next_unpaid(paid_through, start_month)
    if first > month_start(as_of):
        return ACTIVE
    if first <= lapse_threshold(as_of):
        return LAPSED
    return GRACE


def first_month_to_pay(*, paid_through: date | None, start_month: date, as_of: date) -> date:
    """Where a payment made on `as_of` starts: the first unpaid month, or - for a lapsed
    participant - the current month (no back-cover for the lapsed period)."""
    if status_for(paid_through=paid_through, start_month=start_month, as_of=as_of) == LAPSED:
        return month_start(as_of)
    return next_unpaid(paid_through, start_month)


def months_due_now(*, paid_through: date | None, start_month: date, as_of: date) -> int:
    """Months to pay on `as_of` to be active: arrears plus the current month (0 if active)."""
    first = first_month_to_pay(paid_through=paid_through, start_month=start_month, as_of=as_of)
    return max(0, months_between(first, month_start(as_of)) + 1)


def status_calendar(first: date, last: date) -> list[tuple[date, date, date]]:
    """The status rule as a calendar, for code that moves many participants through many days
    (the reporting rollups): (N, grace_from, lapsed_from) for every next-unpaid month N whose
    status changes between `first` and `last` - the first day on which a participant with
    first unpaid month N is no longer active (month_start(D) >= N) and the first day on which
    they are lapsed (lapse_threshold(D) >= N); `last` + 1 day where that is after the range.
    Months below the table are lapsed over the whole range, months above it active. With N
    fixed the status only moves forward, so status_for(N, D) is read off these two days
    (rules_sql.status_by_calendar)."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    end = last + timedelta(days=1)
    out = []
    month = add_months(lapse_threshold(first), -1)
    high = add_months(month_start(last), 1)
    while month <= high:
        grace_from = next((d for d in days if month_start(d) >= month), end)
        lapsed_from = next((d for d in days if lapse_threshold(d) >= month), end)
        out.append((month, grace_from, lapsed_from))
        month = add_months(month, 1)
    return out


def month_end(month: date) -> date:
    """The last day of `month`'s month."""
    return add_months(month_start(month), 1) - timedelta(days=1)


def status_at_month_end(*, paid_through: date | None, start_month: date, month: date) -> str:
    """The status at the end of the last day of `month` (paid_through: as it stood then) - the
    dashboard's status on that day. Active at the end of month m <=> month m is paid. The
    cohort rollups (reporting.rollups.cohorts) count a participant as active at membership
    month k when this is ACTIVE for m = start month + k - 1."""
    return status_for(paid_through=paid_through, start_month=start_month, as_of=month_end(month))


def month_end_calendar(first: date, last: date) -> list[tuple[date, date]]:
    """The status rule at month ends as a calendar, for the set-based cohort build: for every
    next-unpaid month N that lapses at the end of a month from `first` to `last`, the first
    month L at whose end a participant with first unpaid month N is lapsed
    (lapse_threshold(month_end(L)) >= N). N below the table is lapsed at every month end of
    the range, N above it never; active at the end of m <=> N > m (status_for). With N fixed
    the status only moves forward: active before N, grace from N, lapsed from L
    (rules_sql.status_at_month_end reads it)."""
    months = []
    month = month_start(first)
    while month <= month_start(last):
        months.append(month)
        month = add_months(month, 1)
    thresholds = [(m, lapse_threshold(month_end(m))) for m in months]
    if not thresholds:
        return []
    out = []
    n = add_months(thresholds[0][1], 1)
    while n <= thresholds[-1][1]:
        out.append((n, next(m for m, thr in thresholds if thr >= n)))
        n = add_months(n, 1)
    return out
