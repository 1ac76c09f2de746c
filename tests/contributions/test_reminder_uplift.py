"""Reminder holdout and uplift (contributions/messaging/uplift.py; docs/reminders.md "Holdout and
uplift"): the assignment is deterministic, balanced and recorded, the held-out get no message,
the statistic matches hand computations, the page and its CSV, the holdout setting's checks."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from contributions.coverage import due_date
from contributions.messaging import reminders, uplift
from contributions.models import Reminder, ReminderAssignment, ReminderRule
from contributions.services import reverse_payment
from tests.conftest import login_as

pytestmark = pytest.mark.django_db

NOV = date(2026, 11, 1)
DEC = date(2026, 12, 1)
KEY = "test-holdout-key"


@pytest.fixture(autouse=True)
def _rules(refdata: Any, settings: Any) -> None:
    reminders.seed_reminder_rules()
    settings.REMINDER_HOLDOUT_KEY = KEY
    settings.REMINDER_CALLBACK_SECRET = "test-callback-secret"


def rule(kind: str) -> ReminderRule:
    return ReminderRule.objects.get(kind=kind)


# --- assignment: deterministic and balanced ------------------------------------------------------
N_SYNTHETIC = 20_000


def within_binomial(held: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(held - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_assignment_is_deterministic_and_keyed() -> None:
    a = uplift.bucket(123, 4, NOV, KEY)
    assert a == uplift.bucket(123, 4, NOV, KEY)  # same inputs, same bucket
    assert 0 <= a < uplift.BUCKETS
    # another key, rule or month draws again (20 ids: the chance all 20 agree by luck is nil)
    ids = range(1, 21)
    mine = [uplift.bucket(i, 4, NOV, KEY) for i in ids]
    assert mine != [uplift.bucket(i, 4, NOV, "another-key") for i in ids]
    assert mine != [uplift.bucket(i, 5, NOV, KEY) for i in ids]
    assert mine != [uplift.bucket(i, 4, DEC, KEY) for i in ids]
    assert uplift.held_out_below(10) == 1000 and uplift.held_out_below(0) == 0


def test_holdout_share_is_the_setting_within_binomial_tolerance() -> None:
    """20,000 synthetic participants at 10 %: about 2,000 held out (sd = sqrt(20000 * .1 * .9)
    = 42.4; four sd = +-170). Also at 50 % and 1 %, and 0 % holds out no one."""
    ids = range(1, N_SYNTHETIC + 1)
    for pct in (1, 10, 50):
        held = sum(uplift.is_held_out(i, 3, NOV, pct, KEY) for i in ids)
        assert within_binomial(held, N_SYNTHETIC, pct / 100), (pct, held)
    assert not any(uplift.is_held_out(i, 3, NOV, 0, KEY) for i in ids)


@pytest.mark.parametrize(
    ("name", "group_of", "groups"),
    [
        # ids handed out province by province (a bulk import per province): 34 blocks
        ("province blocks", lambda i: (i - 1) * 34 // N_SYNTHETIC, 34),
        # ids interleaved (registrations in arrival order): residues, e.g. 38 occupations
        ("occupation residues", lambda i: i % 38, 38),
        # even / odd ids (a generator that alternates sexes)
        ("parity", lambda i: i % 2, 2),
    ],
)
def test_holdout_is_balanced_across_groups(name: str, group_of: Any, groups: int) -> None:
    """Each province / occupation keeps the 10 % share within four binomial sd of its size (a
    hash that followed the id's digits, e.g. id % 10, fails the residues case)."""
    held = [0] * groups
    size = [0] * groups
    for i in range(1, N_SYNTHETIC + 1):
        g = group_of(i)
        size[g] += 1
        held[g] += uplift.is_held_out(i, 3, NOV, 10, KEY)
    for g in range(groups):
        assert within_binomial(held[g], size[g], 0.10), (name, g, held[g], size[g])


def test_redrawn_each_month() -> None:
    """The month is in the hash: held out in November says nothing about December, so about
    1 % (10 % x 10 %) are held out twice, not 10 % (the same people each month)."""
    ids = range(1, N_SYNTHETIC + 1)
    both = sum(
        uplift.is_held_out(i, 3, NOV, 10, KEY) and uplift.is_held_out(i, 3, DEC, 10, KEY)
        for i in ids
    )
    assert within_binomial(both, N_SYNTHETIC, 0.01), both


def test_sql_bucket_is_the_python_bucket() -> None:
    """The planner draws in SQL: the same bucket as the Python twin for all 20,000 ids."""
    sql = "SELECT i, " + uplift.bucket_sql("i", "%(rule)s", "%(month)s::date")
    sql += " FROM generate_series(1, %(n)s) AS i ORDER BY i"
    with connection.cursor() as cur:
        cur.execute(sql, {"holdout_key": KEY, "rule": 3, "month": NOV, "n": N_SYNTHETIC})
        rows = cur.fetchall()
    assert len(rows) == N_SYNTHETIC
    assert all(b == uplift.bucket(i, 3, NOV, KEY) for i, b in rows)


# --- the planner records the arms; the held out get nothing ---------------------------------------
def due_soon_day(month: date) -> date:
    return due_date(month) - timedelta(days=3)


@pytest.mark.clock("2026-11-05T03:00:00Z")
def test_planner_records_arms_and_sends_only_to_the_reminded(reminded: Any, gateway: Any) -> None:
    people = [reminded() for _ in range(40)]  # registered in November: all owe November
    ReminderRule.objects.filter(kind="due_soon").update(holdout_percent=50)
    r = rule("due_soon")
    day = due_soon_day(NOV)
    created = reminders.plan_reminders(day=day).created["due_soon"]

    arms = {a.participant_id: a for a in ReminderAssignment.objects.filter(rule=r)}
    assert set(arms) == {p.pk for p in people}  # every eligible participant, recorded
    for p in people:
        a = arms[p.pk]
        assert a.held_out == uplift.is_held_out(p.pk, r.pk, NOV, 50, KEY)
        assert (a.period, a.assigned_on, a.holdout_percent) == (NOV, day, 50)
    held = {pid for pid, a in arms.items() if a.held_out}
    assert 0 < len(held) < 40
    reminded_ids = set(
        Reminder.objects.filter(kind="due_soon").values_list("participant_id", flat=True)
    )
    assert reminded_ids == {p.pk for p in people} - held
    assert created == 40 - len(held)

    # planning again (the same day, a new key, holdout 0): nobody moves, nobody held out is reminded
    reminders.plan_reminders(day=day)
    ReminderRule.objects.filter(kind="due_soon").update(holdout_percent=0)
    reminders.plan_reminders(day=day)
    assert ReminderAssignment.objects.filter(rule=r).count() == 40
    assert (
        set(Reminder.objects.filter(kind="due_soon").values_list("participant_id", flat=True))
        == reminded_ids
    )

    # delivery: the gateway's outbox holds a message for each reminded participant, none else
    ids = list(Reminder.objects.filter(kind="due_soon").values_list("pk", flat=True))
    noon = datetime(day.year, day.month, day.day, 5, tzinfo=UTC)  # 12:00 WIB
    assert reminders.deliver_batch(ids, now=noon).sent == len(reminded_ids)
    phones = {m["to"] for m in gateway.state.messages}
    assert phones == {p.phone for p in people if p.pk in reminded_ids}
    assert not phones & {p.phone for p in people if p.pk in held}


@pytest.mark.clock("2026-11-05T03:00:00Z")
def test_without_holdout_nothing_is_recorded_and_everyone_is_reminded(reminded: Any) -> None:
    people = [reminded() for _ in range(5)]
    assert reminders.plan_reminders(day=due_soon_day(NOV)).created["due_soon"] == 5
    assert ReminderAssignment.objects.count() == 0
    assert Reminder.objects.filter(participant__in=people).count() == 5


# --- the statistic --------------------------------------------------------------------------------
def test_newcombe_against_a_hand_computed_case() -> None:
    """Reminded 56 of 70 paid, held out 48 of 80 (Newcombe 1998, Table II, example (a)).

    z = 1.959964, z^2 = 3.841459.
    Wilson, 56/70: p = 0.8; 1 + z^2/70 = 1.054878; centre = (0.8 + 3.841459/140) / 1.054878
      = 0.827439 / 1.054878 = 0.784393; half = 1.959964 / 1.054878
      * sqrt(0.8*0.2/70 + 3.841459/19600) = 1.858000 * sqrt(0.0022857 + 0.0001960)
      = 1.858000 * 0.049817 = 0.092560 -> (0.691834, 0.876953).
    Wilson, 48/80: p = 0.6; 1 + z^2/80 = 1.048018; centre = (0.6 + 3.841459/160) / 1.048018
      = 0.624009 / 1.048018 = 0.595418; half = 1.959964 / 1.048018
      * sqrt(0.6*0.4/80 + 3.841459/25600) = 1.870163 * sqrt(0.003 + 0.00015006)
      = 1.870163 * 0.056125 = 0.104963 -> (0.490455, 0.700381).
    d = 0.8 - 0.6 = 0.2.
    L = 0.2 - sqrt((0.8 - 0.691834)^2 + (0.700381 - 0.6)^2)
      = 0.2 - sqrt(0.011700 + 0.010076) = 0.2 - 0.147569 = 0.052431.
    U = 0.2 + sqrt((0.876953 - 0.8)^2 + (0.6 - 0.490455)^2)
      = 0.2 + sqrt(0.005922 + 0.012000) = 0.2 + 0.133873 = 0.333873.
    Newcombe's table prints 0.0524 to 0.3339. (Wald would say 0.0575 to 0.3425.)"""
    lo1, hi1 = uplift.wilson(56, 70)
    lo2, hi2 = uplift.wilson(48, 80)
    assert (round(lo1, 4), round(hi1, 4)) == (0.6918, 0.8770)
    assert (round(lo2, 4), round(hi2, 4)) == (0.4905, 0.7004)
    d, low, high = uplift.newcombe(56, 70, 48, 80)
    assert round(d, 6) == 0.2
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "low", "high"),
    [  # Newcombe 1998, Table II, method 10: small counts and a zero cell
        (9, 10, 3, 10, 0.1705, 0.8090),
        (6, 7, 2, 7, 0.0582, 0.8062),
        (5, 56, 0, 29, -0.0381, 0.1926),
    ],
)
def test_newcombe_table(x1: int, n1: int, x2: int, n2: int, low: float, high: float) -> None:
    _d, lo, hi = uplift.newcombe(x1, n1, x2, n2)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


def test_small_or_empty_arms_say_not_enough_data() -> None:
    assert uplift.window(7, 100, 40, 0, 0, 30).status == "not_enough_data"
    small = uplift.window(7, 100, 40, 29, 10, 30)
    assert small.status == "not_enough_data" and small.difference is None and small.low is None
    assert uplift.window(7, 0, 0, 0, 0, 30).status == "open"
    ok = uplift.window(7, 70, 56, 80, 48, 30)
    assert ok.status == "ok" and ok.verdict == "higher"
    assert uplift.window(7, 80, 48, 70, 56, 30).verdict == "lower"
    assert uplift.window(7, 10, 5, 10, 5, 10).verdict == "unclear"


# --- the uplift from the ledger ---------------------------------------------------------------
@pytest.fixture
def measured(reminded: Any, pay: Any) -> dict[str, Any]:
    """due_soon of November fired on 12 Nov (D): four reminded (A1-A4), four held out (H1-H4).
    Windows: 7 days = 12-18 Nov, 14 days = 12-25 Nov (payments at 10:00 WIB).
    A1 pays on D, A2 on D+6 -> paid within 7 (and 14); A3 on D+7 -> within 14 only;
    A4 paid on 11 Nov (before D) -> neither.
    H1 pays on D+13 -> within 14 only; H2 on D+3 but the payment is reversed -> neither;
    H3 never; H4 on D+14 -> neither.
    7 days: reminded 2/4, held out 0/4; 14 days: reminded 3/4, held out 1/4.
    due_today of November fired on 27 Nov: its 7-day window closes on 4 Dec, after today."""
    d = date(2026, 11, 12)
    r = rule("due_soon")
    people = {
        name: reminded(start_month=date(2026, 10, 1))
        for name in ("A1", "A2", "A3", "A4", "H1", "H2", "H3", "H4")
    }
    for name, p in people.items():
        ReminderAssignment.objects.create(
            participant=p,
            rule=r,
            period=NOV,
            held_out=name.startswith("H"),
            holdout_percent=50,
            assigned_on=d,
        )
        ReminderAssignment.objects.create(
            participant=p,
            rule=rule("due_today"),
            period=NOV,
            held_out=name.startswith("H"),
            holdout_percent=50,
            assigned_on=date(2026, 11, 27),
        )
    pay(people["A4"], paid_on=d - timedelta(days=1))
    pay(people["A1"], paid_on=d)
    pay(people["A2"], paid_on=d + timedelta(days=6))
    pay(people["A3"], paid_on=d + timedelta(days=7))
    pay(people["H1"], paid_on=d + timedelta(days=13))
    payment, _created = pay(people["H2"], paid_on=d + timedelta(days=3))
    reverse_payment(payment=payment, reason="bounced", user=None)
    pay(people["H4"], paid_on=d + timedelta(days=14))
    return people


@pytest.mark.clock("2026-11-30T05:00:00Z")
def test_uplift_figures_from_the_ledger(measured: Any, settings: Any) -> None:
    settings.REMINDER_UPLIFT_MIN_ARM = 4
    rows = {r.kind: r for r in uplift.uplift_rows(date(2026, 11, 30))}
    soon = rows["due_soon"]
    assert (soon.period, soon.reminded, soon.held_out, soon.holdout_percent) == (NOV, 4, 4, 50)
    w7, w14 = soon.windows
    assert (w7.days, w7.reminded_paid, w7.reminded_n, w7.held_paid, w7.held_n) == (7, 2, 4, 0, 4)
    assert (w14.reminded_paid, w14.reminded_n, w14.held_paid, w14.held_n) == (3, 4, 1, 4)
    assert w7.status == w14.status == "ok"
    # 14 days: 3/4 - 1/4 = 0.5; Wilson(3, 4) = (0.3006, 0.9544), Wilson(1, 4) = (0.0456,
    # 0.6994); L = 0.5 - sqrt((0.75 - 0.3006)^2 + (0.6994 - 0.25)^2) = 0.5 - 0.6355 = -0.1355,
    # U = 0.5 + sqrt((0.9544 - 0.75)^2 + (0.25 - 0.0456)^2) = 0.5 + 0.2891 = 0.7891
    assert w14.difference == pytest.approx(0.5)
    assert (round(w14.low or 0, 4), round(w14.high or 0, 4)) == (-0.1355, 0.7891)
    assert w14.verdict == "unclear"
    assert rows["due_today"].windows[0].status == "open"
    # the default minimum arm (30): no interval for four people
    settings.REMINDER_UPLIFT_MIN_ARM = 30
    again = {r.kind: r for r in uplift.uplift_rows(date(2026, 11, 30))}
    assert [w.status for w in again["due_soon"].windows] == ["not_enough_data"] * 2


# --- the page -------------------------------------------------------------------------------------
@pytest.mark.clock("2026-11-30T05:00:00Z")
def test_uplift_page_for_allowed_and_refused_roles(
    client: Any, measured: Any, admin_user: Any, agent: Any, supervisor: Any, settings: Any
) -> None:
    settings.REMINDER_UPLIFT_MIN_ARM = 4
    url = reverse("contributions:reminders_uplift")
    assert client.get(url).status_code == 302  # anonymous: to the login page
    for user in (agent, supervisor):
        client.force_login(user)
        assert client.get(url).status_code == 403
        assert client.get(url + "?format=csv").status_code == 403
    login_as(client, admin_user)
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-kind="due_soon" data-month="2026-11"' in html
    assert "50.0 %" in html and "(2/4)" in html and "(1/4)" in html
    assert "window still open" in html
    today = client.get(reverse("contributions:reminders_today"))
    assert url in today.content.decode()  # linked from the day's plan
    csv = client.get(url + "?format=csv")
    assert csv["Content-Type"].startswith("text/csv")
    lines = csv.content.decode().splitlines()
    assert lines[0].split(",") == uplift.CSV_HEADER
    assert "due_soon,2026-11,50,4,4,14,4,3,4,1,75.0,25.0,50.0,-13.5,78.9,ok" in lines
    assert client.get(url + "?months=abc").status_code == 400
    assert client.get(url + "?months=99").status_code == 400


# --- the setting ------------------------------------------------------------------------------
def test_bad_holdout_values_are_refused_with_a_clear_message(client: Any, admin_user: Any) -> None:
    login_as(client, admin_user)
    r = rule("due_soon")
    url = reverse("admin:contributions_reminderrule_change", args=[r.pk])
    form = {"kind": r.kind, "offset_days": r.offset_days, "enabled": "on", "channel": ""}
    for bad, message in (
        ("60", "The holdout must be between 0 and 50 percent."),
        ("-1", "The holdout must be between 0 and 50 percent."),
        ("ten", "The holdout must be a whole number of percent."),
        ("", "Enter the holdout in percent (0 = no holdout)."),
    ):
        page = client.post(url, {**form, "holdout_percent": bad}, HTTP_ACCEPT_LANGUAGE="en")
        assert page.status_code == 200, bad  # the form again, with the error
        assert message in page.content.decode(), bad
        assert rule("due_soon").holdout_percent == 0
    # Indonesian by default
    page = client.post(url, {**form, "holdout_percent": "60"})
    assert page.status_code == 200 and rule("due_soon").holdout_percent == 0
    assert client.post(url, {**form, "holdout_percent": "10"}).status_code == 302
    assert rule("due_soon").holdout_percent == 10
    # and the database refuses what the form would (a raw update)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReminderRule.objects.filter(pk=r.pk).update(holdout_percent=51)


def test_an_arm_is_recorded_once_per_participant_rule_and_month(reminded: Any) -> None:
    p = reminded()
    r = rule("due_soon")
    kw = {"participant": p, "rule": r, "period": NOV, "holdout_percent": 10}
    ReminderAssignment.objects.create(held_out=True, assigned_on=date(2026, 11, 12), **kw)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReminderAssignment.objects.create(held_out=False, assigned_on=date(2026, 11, 13), **kw)


@pytest.mark.clock("2026-11-05T03:00:00Z")
def test_payment_thanks_holdout_uses_the_month_paid(reminded: Any, pay: Any) -> None:
    """The event rule's arm is keyed on the first month the payment covered (its period)."""
    people = [reminded(start_month=date(2026, 10, 1)) for _ in range(12)]
    for p in people:
        pay(p, paid_on=date(2026, 11, 3))
    ReminderRule.objects.filter(kind="payment_thanks").update(holdout_percent=50)
    r = rule("payment_thanks")
    created = reminders.plan_reminders(day=date(2026, 11, 4)).created["payment_thanks"]
    arms = list(ReminderAssignment.objects.filter(rule=r))
    assert len(arms) == 12 and {a.period for a in arms} == {date(2026, 10, 1)}
    for a in arms:
        assert a.held_out == uplift.is_held_out(a.participant_id, r.pk, a.period, 50, KEY)
    held = {a.participant_id for a in arms if a.held_out}
    thanked = set(
        Reminder.objects.filter(kind="payment_thanks").values_list("participant_id", flat=True)
    )
    assert thanked == {p.pk for p in people} - held and created == len(thanked)


def test_the_rules_list_refuses_a_bad_holdout_too(client: Any, admin_user: Any) -> None:
    """The admin's list, where the rules are edited in place, uses the same checks."""
    login_as(client, admin_user)
    rules = list(ReminderRule.objects.order_by("kind"))
    form: dict[str, Any] = {
        "form-TOTAL_FORMS": len(rules),
        "form-INITIAL_FORMS": len(rules),
        "_save": "Save",
    }
    for i, r in enumerate(rules):
        form.update(
            {
                f"form-{i}-id": r.pk,
                f"form-{i}-offset_days": r.offset_days,
                f"form-{i}-enabled": "on",
                f"form-{i}-channel": "",
                f"form-{i}-holdout_percent": "75" if r.kind == "due_soon" else "0",
            }
        )
    url = reverse("admin:contributions_reminderrule_changelist")
    page = client.post(url, form, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert "The holdout must be between 0 and 50 percent." in page.content.decode()
    assert rule("due_soon").holdout_percent == 0
