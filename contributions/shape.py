"""How synthetic participants pay: the payer profiles of the demo (contributions/demo.py) and of
the national-scale generator (bench/generate.py imports these), in Python and in SQL with a test
that the two agree (tests/contributions/test_demo.py).

A profile decides *when* a participant pays and *how many months at a time*; what a payment
covers and costs is never decided here but by the status and rate rules (coverage.py, quotes),
so a lapsed participant's payment is a reactivation without back-cover, as for a real one.

Profiles, as shares of self-paying participants (an assumption for synthetic data; sponsored
workers pay monthly through their sponsor):
- monthly (52 %): every month;
- advance (15 %): 3-6 months at a time;
- late (13 %): two months every other month, paid about 40 days after the first one starts;
- returning (10 %): three months, a gap of 5+ months (they lapse), then monthly again;
- stopped (10 %): two to five months, then never again.
Event index k = months since the first month paid for (the registration month); `h` is a small
per-participant number (0-6) that staggers the lengths; `kmax` the index of the current month.
"""

from __future__ import annotations

PROFILES = [("monthly", 52), ("advance", 15), ("late", 13), ("returning", 10), ("stopped", 10)]
PROFILE_NAMES = [p for p, _w in PROFILES]
H_VALUES = 7  # h is drawn from 0..6
LATE_DAYS = 40  # a late payer pays this many days after the month starts


def months_per_payment(profile: str, h: int) -> int:
    """How many months a payment of this profile covers (`l`)."""
    if profile == "advance":
        return 3 + h % 4
    if profile == "late":
        return 2
    return 1


def pays(profile: str, k: int, *, l: int, h: int, kmax: int) -> bool:  # noqa: E741 - as in SQL
    """Does a participant of this profile make a payment in event month k? (The Python twin of
    COND.)"""
    if profile == "monthly":
        return True
    if profile == "advance":
        return k % l == 0
    if profile == "late":
        return k % 2 == 0 and k < kmax
    if profile == "returning":
        return k < 3 or k >= 8 + h
    if profile == "stopped":
        return k < 2 + h % 4
    raise ValueError(f"unknown payer profile {profile!r}")


# COND.format(k=...): the same rule over a row `b` with columns profile, l, h, kmax (the
# generator's per-participant table). %% because the generator binds it with psycopg.
COND = """CASE b.profile
    WHEN 'monthly' THEN true
    WHEN 'advance' THEN ({k}) %% b.l = 0
    WHEN 'late' THEN ({k}) %% 2 = 0 AND ({k}) < b.kmax
    WHEN 'returning' THEN ({k}) < 3 OR ({k}) >= 8 + b.h
    WHEN 'stopped' THEN ({k}) < 2 + b.h %% 4
END"""
