"""Reminder holdout and uplift: who is held out of a rule, and did the reminder make people pay?

Assignment (docs/reminders.md "Holdout and uplift"). A rule with `holdout_percent` h > 0 holds
out an eligible participant for a due month M when

    bucket = int(first 8 hex digits of SHA-256("<key>:<participant id>:<rule id>:<YYYY-MM>"), 16)
             mod 10,000  <  100 * h

(`bucket_sql` is the SQL form the planner uses, `bucket` the Python twin; a test proves they
agree). Deterministic, uniform over 0..9,999 (the bias of 2^32 mod 10,000 is below 10^-6), and
keyed (REMINDER_HOLDOUT_KEY, else derived from SECRET_KEY) so that nobody can tell in advance
who will be held out. Re-drawn every month: the month is in the hash, so nobody is left without
a given reminder month after month (an about-to-lapse message withheld for ever could cost a
worker their social security), and each month is a fresh, independent experiment. The planner
records the arm of every eligible participant (ReminderAssignment) before it writes any
reminder; the first record wins, so a re-plan or a new key moves no one.

Uplift. For rule R and month M, the participants assigned on day D (= the reminder's
planned_for) are "paid within w days" when a payment entry of theirs in the ledger (kind
payment, not reversed) has its payment's paid_at in [D 00:00, D+w 00:00) Asia/Jakarta
(settings.TIME_ZONE): the same clock starts for both arms, before the reminder's 08:00 send.
A window is counted only once it has closed (D + w <= today). The rates of the two arms, their
difference (reminded - held out) and its 95 % interval: Newcombe's hybrid score interval
(method 10 of Newcombe, Stat Med 1998;17:873-890), from the two Wilson score intervals:

    wilson(x, n):  p = x/n,  c = (p + z^2/2n) / (1 + z^2/n),
                   h = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2),   (l, u) = (c - h, c + h)
    d = p1 - p2,   L = d - sqrt((p1 - l1)^2 + (u2 - p2)^2),
                   U = d + sqrt((u1 - p1)^2 + (p2 - l2)^2),           z = 1.959964

An arm with fewer than REMINDER_UPLIFT_MIN_ARM participants whose window has closed gets
"not enough data" instead of a rate difference (the interval would be honest but too wide to
read, and a rate of 2 out of 3 invites a wrong conclusion).

Limits: intention to treat (a reminded participant whose reminder was skipped as paid
meanwhile, failed or opted out stays in the reminded arm: the figure is the effect of *planning*
the reminder); each rule is measured given the other rules (a participant held out of due_soon
may still get due_today); months are independent draws, so a participant appears once per rule
and month, and pooling months would need a cluster-aware interval; 20 rows read at 95 % will
show about one "significant" difference by chance.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.conf import settings
from django.db import connection

from .. import rules_sql
from ..models import ReminderAssignment, ReminderKind, ReminderRule
from ..rates import add_months

BUCKETS = 10_000  # a holdout share is compared in hundredths of a percent
Z95 = 1.959963984540054  # the standard normal's 97.5th percentile (statistics.NormalDist)
WINDOWS = (7, 14)  # days after the assignment day


def holdout_key() -> str:
    """The hash key: REMINDER_HOLDOUT_KEY, else one derived from SECRET_KEY (never the
    SECRET_KEY itself, which would then be exposed to every SQL statement log)."""
    key = str(getattr(settings, "REMINDER_HOLDOUT_KEY", "") or "")
    if key:
        return key
    return hashlib.sha256(f"reminder-holdout:{settings.SECRET_KEY}".encode()).hexdigest()[:32]


def bucket(participant_id: int, rule_id: int, period: date, key: str | None = None) -> int:
    """The participant's bucket (0..9,999) for the rule and due month (the Python twin of
    bucket_sql)."""
    key = holdout_key() if key is None else key
    text = f"{key}:{participant_id}:{rule_id}:{period:%Y-%m}"
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % BUCKETS


def held_out_below(percent: int) -> int:
    """Buckets below this are held out."""
    return int(percent) * (BUCKETS // 100)


def is_held_out(
    participant_id: int, rule_id: int, period: date, percent: int, key: str | None = None
) -> bool:
    return bucket(participant_id, rule_id, period, key) < held_out_below(percent)


def bucket_sql(participant_sql: str, rule_sql: str, period_sql: str) -> str:
    """bucket() in SQL; the key is the bind parameter %(holdout_key)s of the caller's statement.
    The arguments are trusted SQL (aliases and placeholders of the calling code)."""
    text = (
        f"%(holdout_key)s || ':' || ({participant_sql})::text || ':' || ({rule_sql})::text"
        f" || ':' || to_char({period_sql}, 'YYYY-MM')"
    )
    return (
        f"mod(('x' || left(encode(sha256(convert_to({text}, 'UTF8')), 'hex'), 8))"
        f"::bit(32)::bigint, {BUCKETS})"
    )


# --- the statistic ------------------------------------------------------------------------------
def wilson(x: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for x successes out of n (n > 0)."""
    p = x / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """p1 - p2 and its interval by Newcombe's hybrid score method (method 10, 1998)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


# --- the figures ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """One payment window of one rule and month."""

    days: int
    reminded_n: int  # participants whose window has closed
    reminded_paid: int
    held_n: int
    held_paid: int
    status: str  # "ok", "not_enough_data", "open" (no window closed yet)
    reminded_rate: float | None = None
    held_rate: float | None = None
    difference: float | None = None
    low: float | None = None
    high: float | None = None

    # percentages / percentage points for the page (None stays None)
    @property
    def reminded_pct(self) -> float | None:
        return None if self.reminded_rate is None else self.reminded_rate * 100

    @property
    def held_pct(self) -> float | None:
        return None if self.held_rate is None else self.held_rate * 100

    @property
    def difference_pp(self) -> float | None:
        return None if self.difference is None else self.difference * 100

    @property
    def low_pp(self) -> float | None:
        return None if self.low is None else self.low * 100

    @property
    def high_pp(self) -> float | None:
        return None if self.high is None else self.high * 100

    @property
    def verdict(self) -> str:
        """higher: the whole interval is above zero; lower: below it; else unclear ("" without
        an interval)."""
        if self.low is None or self.high is None:
            return ""
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "unclear"


@dataclass(frozen=True)
class UpliftRow:
    kind: str
    label: str
    period: date
    holdout_percent: int
    reminded: int  # eligible participants in each arm
    held_out: int
    first_assigned: date
    windows: list[Window] = field(default_factory=list)


def window(days: int, rn: int, rx: int, hn: int, hx: int, min_arm: int) -> Window:
    if rn == 0 and hn == 0:
        return Window(days, rn, rx, hn, hx, "open")
    rates: dict[str, Any] = {
        "reminded_rate": rx / rn if rn else None,
        "held_rate": hx / hn if hn else None,
    }
    if rn < min_arm or hn < min_arm:
        return Window(days, rn, rx, hn, hx, "not_enough_data", **rates)
    d, low, high = newcombe(rx, rn, hx, hn)
    return Window(days, rn, rx, hn, hx, "ok", **rates, difference=d, low=low, high=high)


def _paid_within(days: int) -> str:
    return f"f.first_paid < a.start + interval '{int(days)} days'"


_UPLIFT = """
SELECT a.rule_id, a.period, a.held_out, max(a.holdout_percent), min(a.assigned_on), count(*),
       {counts}
FROM (
    SELECT ra.*, (ra.assigned_on::timestamp AT TIME ZONE %(tz)s) AS start
    FROM {assignment} ra
    WHERE ra.period >= %(since)s AND ra.period <= %(until)s
) a
LEFT JOIN LATERAL (
    SELECT min(pay.paid_at) AS first_paid
    FROM {ledger} l
    JOIN {payment} pay ON pay.participant_id = l.participant_id AND pay.id = l.payment_id
    WHERE l.participant_id = a.participant_id AND l.kind = 'payment'
      AND pay.paid_at >= a.start AND pay.paid_at < a.start + interval '{longest} days'
      AND NOT EXISTS (SELECT 1 FROM {ledger} rv
                      WHERE rv.participant_id = l.participant_id AND rv.reverses_id = l.id)
) f ON true
GROUP BY a.rule_id, a.period, a.held_out
"""


def _uplift_sql() -> str:
    """Per rule, month and arm: how many were assigned, and for each window how many have a
    closed window and how many of those paid in it. "Paid": a payment entry of the participant
    in the ledger (kind payment, not reversed), its payment's paid_at from the start of the
    assignment day. Identifiers come from the models (rules_sql.T), values are parameters."""
    counts = []
    for w in WINDOWS:
        closed = f"a.assigned_on + {int(w)} <= %(today)s"
        counts.append(f"count(*) FILTER (WHERE {closed}) AS n{w}")
        counts.append(f"count(*) FILTER (WHERE {closed} AND {_paid_within(w)}) AS x{w}")
    return _UPLIFT.format(
        counts=", ".join(counts),
        assignment=ReminderAssignment._meta.db_table,
        ledger=rules_sql.T.ledger,
        payment=rules_sql.T.payment,
        longest=int(max(WINDOWS)),
    )


def uplift_rows(today: date, months: int = 12) -> list[UpliftRow]:
    """The rules' uplift per due month, the `months` months up to today's, newest first."""
    until = today.replace(day=1)
    since = add_months(until, -(months - 1))
    with connection.cursor() as cur:
        cur.execute(
            _uplift_sql(),
            {"today": today, "tz": settings.TIME_ZONE, "since": since, "until": until},
        )
        raw = cur.fetchall()
    rules = {r.pk: r for r in ReminderRule.objects.all()}
    labels = dict(ReminderKind.choices)
    arms: dict[tuple[int, date], dict[bool, tuple[Any, ...]]] = {}
    for row in raw:
        arms.setdefault((row[0], row[1]), {})[bool(row[2])] = row[3:]
    min_arm = int(settings.REMINDER_UPLIFT_MIN_ARM)
    out = []
    for (rule_id, period), by_arm in arms.items():
        empty = (0, None, 0) + (0,) * (2 * len(WINDOWS))
        rem, held = by_arm.get(False, empty), by_arm.get(True, empty)
        rule = rules.get(rule_id)
        kind = rule.kind if rule else str(rule_id)
        windows = [
            window(w, rem[3 + 2 * i], rem[4 + 2 * i], held[3 + 2 * i], held[4 + 2 * i], min_arm)
            for i, w in enumerate(WINDOWS)
        ]
        out.append(
            UpliftRow(
                kind=kind,
                label=str(labels.get(kind, kind)),
                period=period,
                holdout_percent=int(max(rem[0] or 0, held[0] or 0)),
                reminded=int(rem[2]),
                held_out=int(held[2]),
                first_assigned=min(d for d in (rem[1], held[1]) if d is not None),
                windows=windows,
            )
        )
    out.sort(key=lambda r: (-r.period.toordinal(), r.kind))
    return out


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}"


CSV_HEADER = [
    "rule",
    "month",
    "holdout_percent",
    "eligible_reminded",
    "eligible_held_out",
    "window_days",
    "reminded_closed",
    "reminded_paid",
    "held_out_closed",
    "held_out_paid",
    "reminded_rate_pct",
    "held_out_rate_pct",
    "difference_pct_points",
    "ci95_low_pct_points",
    "ci95_high_pct_points",
    "status",
]


def uplift_csv(rows: list[UpliftRow]) -> str:
    """One line per rule, month and window (percentages with one decimal; status "ok",
    "not_enough_data" or "open"). Only codes and numbers: nothing a spreadsheet could run."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        for w in r.windows:
            writer.writerow(
                [
                    r.kind,
                    f"{r.period:%Y-%m}",
                    r.holdout_percent,
                    r.reminded,
                    r.held_out,
                    w.days,
                    w.reminded_n,
                    w.reminded_paid,
                    w.held_n,
                    w.held_paid,
                    _pct(w.reminded_rate),
                    _pct(w.held_rate),
                    _pct(w.difference),
                    _pct(w.low),
                    _pct(w.high),
                    w.status,
                ]
            )
    return buf.getvalue()
