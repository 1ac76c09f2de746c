"""Perisai commissions (contributions/commissions): statements from the ledger across the 24-
and 60-month boundaries, the first-registration rule and the monthly minimum, clawback of a
reversal after approval, the database guard of approved statements, scope, bad input, export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.test import Client
from openpyxl import load_workbook

from tests.conftest import login_as, make_staff, nik_for

pytestmark = pytest.mark.django_db

_serial = iter(range(500, 900))


def travel(text: str) -> Any:
    """Move the clock (nested in the test's pinned clock) to an instant, e.g. when posting."""
    return time_machine.travel(datetime.fromisoformat(text).replace(tzinfo=UTC), tick=False)


@pytest.fixture
def rule(refdata: Any) -> Any:
    from contributions.commissions.models import CommissionRule

    return CommissionRule.objects.get(effective_from=date(2022, 4, 1))


@pytest.fixture
def new_participant(register: Any) -> Any:
    """A participant registered by `agent` on `day` (03:00 UTC = 10:00 WIB), optionally back-
    dating the registration month to `start_month` (as if acquired then)."""
    from contributions.models import Coverage
    from enrollment.models import Participant

    def _make(agent: Any, day: str, start_month: date | None = None, **kw: Any) -> Any:
        kw.setdefault("nik", nik_for(serial=next(_serial)))
        with travel(f"{day}T03:00:00"):
            p = register(registered_by=agent.staff, **kw)
        if start_month is not None:
            Coverage.objects.filter(pk=p.pk).update(start_month=start_month)
            Participant.objects.filter(pk=p.pk).update(
                created_at=datetime(start_month.year, start_month.month, 1, 3, tzinfo=UTC)
            )
        p.refresh_from_db()
        return p

    return _make


def pay_at(participant: Any, day: str, months: int, ref: str) -> Any:
    """Post the quoted amount for `months` months on `day` at 10:00 WIB; the ledger entry."""
    from contributions.models import Coverage, LedgerEntry
    from contributions.quotes import quote_payment
    from contributions.services import record_payment

    with travel(f"{day}T03:00:00"):
        cov = Coverage.objects.get(pk=participant.pk)
        due = quote_payment(participant, cov, months=months, as_of=date.fromisoformat(day))
        payment, _ = record_payment(
            participant=participant,
            amount=due.amount,
            months=months,
            payer="participant",
            channel="bank",
            reference=ref,
            paid_at=datetime.fromisoformat(f"{day}T03:00:00").replace(tzinfo=UTC),
        )
    return LedgerEntry.objects.get(payment=payment, kind="payment")


def compute(month: str) -> Any:
    from contributions.commissions.services import compute_month, parse_month

    return compute_month(month=parse_month(month))


def statement(agent: Any, month: str) -> Any:
    from contributions.commissions.models import CommissionStatement

    y, m = month.split("-")
    return CommissionStatement.objects.get(
        kind="agent", agent=agent.staff, month=date(int(y), int(m), 1)
    )


def lines(st: Any, kind: str) -> list[Any]:
    return list(st.lines.filter(kind=kind).order_by("membership_from", "id"))


# --- the rule as data ------------------------------------------------------------------------
def test_seeded_rule_carries_the_perdir_figures_and_its_source(rule: Any) -> None:
    assert (rule.fee_jkk_jkm, rule.fee_with_jht, rule.min_new_niks) == (10_000, 15_000, 25)
    assert (rule.band1_last_month, rule.band1_rate_bp) == (24, 1_500)
    assert (rule.band2_last_month, rule.band2_rate_bp) == (60, 500)
    assert (rule.office_share_bp, rule.pay_by_day) == (1_000, 5)
    assert "13/PERDIR.02/042022" in rule.source and "page67" in rule.source_url


# --- incentive across the bands -----------------------------------------------------------------
@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_incentive_across_the_24_month_boundary(agent: Any, new_participant: Any) -> None:
    # acquired October 2024: September 2026 is membership month 24, October 25, November 26
    p = new_participant(agent, "2026-09-01", start_month=date(2024, 10, 1))
    entry = pay_at(p, "2026-09-10", 3, "B24")
    assert entry.period_start == date(2026, 9, 1) and entry.months == 3
    compute("2026-09")
    st = statement(agent, "2026-09")
    band1, band2 = lines(st, "incentive")
    third = entry.amount // 3
    assert (band1.membership_from, band1.membership_to, band1.months) == (24, 24, 1)
    assert (band1.base, band1.rate_bp, band1.note) == (third, 1_500, "band1")
    assert band1.covered_from == date(2026, 9, 1)
    assert (band2.membership_from, band2.membership_to, band2.months) == (25, 26, 2)
    assert (band2.base, band2.rate_bp, band2.note) == (entry.amount - third, 500, "band2")
    assert band2.covered_from == date(2026, 10, 1)
    assert band1.amount == round(third * 0.15)
    assert band2.amount == round((entry.amount - third) * 0.05)
    assert st.incentive_total == st.total == band1.amount + band2.amount


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_incentive_across_the_60_month_boundary(agent: Any, new_participant: Any) -> None:
    # acquired November 2021: October 2026 is membership month 60, November 61 (no incentive)
    p = new_participant(agent, "2026-10-01", start_month=date(2021, 11, 1))
    entry = pay_at(p, "2026-10-05", 2, "B60")
    assert entry.period_start == date(2026, 10, 1)
    compute("2026-10")
    st = statement(agent, "2026-10")
    band2, beyond = lines(st, "incentive")
    half = entry.amount // 2
    assert (band2.membership_from, band2.months, band2.rate_bp) == (60, 1, 500)
    assert band2.amount == round(half * 0.05)
    assert (beyond.membership_from, beyond.months, beyond.rate_bp) == (61, 1, 0)
    assert (beyond.amount, beyond.note) == (0, "beyond")
    assert st.total == band2.amount


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_a_payment_in_months_1_to_24_earns_15_percent(agent: Any, new_participant: Any) -> None:
    p = new_participant(agent, "2026-11-03")
    entry = pay_at(p, "2026-11-03", 1, "B1")
    compute("2026-11")
    (line,) = lines(statement(agent, "2026-11"), "incentive")
    assert (line.membership_from, line.base, line.rate_bp) == (1, entry.amount, 1_500)
    assert line.amount == round(entry.amount * 0.15)


# --- acquisition fee: first BPU registration, monthly minimum -----------------------------------
@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_a_nik_seen_before_earns_no_fee_and_the_minimum_counts_new_niks_only(
    agent: Any, other_agent: Any, new_participant: Any, rule: Any
) -> None:
    from contributions.commissions.models import PriorBpuNik
    from enrollment import pii

    rule.min_new_niks = 2
    rule.save()
    seen = nik_for(serial=801)
    PriorBpuNik.objects.create(
        nik_digest=pii.nik_digest(seen), first_registered_on=date(2019, 3, 1), source="test"
    )
    new_participant(agent, "2026-11-04")
    new_participant(agent, "2026-11-05", jht=True)
    new_participant(agent, "2026-11-06", nik=seen)
    new_participant(other_agent, "2026-11-07")  # alone: below the minimum of 2
    new_participant(other_agent, "2026-11-08", nik=nik_for(serial=802))
    PriorBpuNik.objects.create(
        nik_digest=pii.nik_digest(nik_for(serial=802)),
        first_registered_on=date(2026, 11, 8),  # seen the same day: that is this registration
        source="test",
    )
    compute("2026-11")
    mine = statement(agent, "2026-11")
    fees = sorted((line.note, line.amount) for line in lines(mine, "fee"))
    assert fees == [("new_nik", 10_000), ("new_nik", 15_000), ("nik_seen", 0)]
    assert (mine.new_participants, mine.qualifying, mine.fee_total) == (3, 2, 25_000)
    theirs = statement(other_agent, "2026-11")
    assert sorted(line.note for line in lines(theirs, "fee")) == ["new_nik", "new_nik"]
    assert theirs.fee_total == 20_000
    rule.min_new_niks = 3
    rule.save()
    compute("2026-11")  # a draft is recomputed
    theirs.refresh_from_db()
    assert theirs.fee_total == 0
    assert {line.note for line in lines(theirs, "fee")} == {"below_minimum"}
    # three registrations but two new NIKs: below a minimum of 3 counted in new NIKs only
    mine.refresh_from_db()
    assert (mine.new_participants, mine.qualifying, mine.fee_total) == (3, 2, 0)
    assert sorted(line.note for line in lines(mine, "fee")) == [
        "below_minimum",
        "below_minimum",
        "nik_seen",
    ]


# --- reversal after approval: clawed back next month ------------------------------------------
@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_a_reversal_after_approval_is_clawed_back_next_month(
    agent: Any, admin_user: Any, new_participant: Any
) -> None:
    from contributions.commissions.services import approve_statement
    from contributions.services import reverse_entry

    p = new_participant(agent, "2026-10-02")
    entry = pay_at(p, "2026-10-03", 2, "CLAW")
    with travel("2026-11-01T03:00:00"):
        compute("2026-10")
        october = approve_statement(statement_id=statement(agent, "2026-10").pk, by=admin_user)
    earned = october.incentive_total
    assert earned > 0
    with travel("2026-11-10T03:00:00"):
        reverse_entry(entry=entry, reason="bank recalled the transfer", user=admin_user)
    compute("2026-11")
    november = statement(agent, "2026-11")
    (claw,) = lines(november, "clawback")
    assert (claw.amount, claw.participant_id, claw.note) == (-earned, p.pk, "reversed")
    assert november.clawback_total == november.total == -earned
    october.refresh_from_db()
    assert (october.status, october.total) == ("approved", earned)  # never edited


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_a_payment_reversed_in_its_own_month_earns_nothing(
    agent: Any, admin_user: Any, new_participant: Any
) -> None:
    from contributions.services import reverse_entry

    p = new_participant(agent, "2026-11-02")
    entry = pay_at(p, "2026-11-03", 1, "SAME")
    with travel("2026-11-20T03:00:00"):
        reverse_entry(entry=entry, reason="duplicate", user=admin_user)
    compute("2026-11")
    st = statement(agent, "2026-11")
    assert lines(st, "incentive") == [] and lines(st, "clawback") == []


# --- offices --------------------------------------------------------------------------------------
@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_the_office_gets_its_share_of_its_members_statements(
    agent: Any, other_agent: Any, branches: Any, new_participant: Any
) -> None:
    from contributions.commissions.models import (
        CommissionStatement,
        PerisaiMembership,
        PerisaiOffice,
    )

    office = PerisaiOffice.objects.create(code="KP-1", name="Wadah Satu", branch=branches["BDG"])
    PerisaiMembership.objects.create(office=office, agent=agent.staff, from_month=date(2026, 1, 1))
    PerisaiMembership.objects.create(  # left before November
        office=office,
        agent=other_agent.staff,
        from_month=date(2026, 1, 1),
        until_month=date(2026, 11, 1),
    )
    pay_at(new_participant(agent, "2026-11-02"), "2026-11-03", 3, "OFF1")
    pay_at(new_participant(other_agent, "2026-11-02"), "2026-11-03", 3, "OFF2")
    compute("2026-11")
    mine = statement(agent, "2026-11")
    st = CommissionStatement.objects.get(kind="office", office=office, month=date(2026, 11, 1))
    (share,) = st.lines.all()
    assert (share.source_statement_id, share.base, share.rate_bp) == (mine.pk, mine.total, 1_000)
    assert st.total == st.office_total == round(mine.total * 0.10)


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_an_office_statement_waits_for_its_agents_approval(
    agent: Any, admin_user: Any, branches: Any, new_participant: Any
) -> None:
    from contributions.commissions.models import (
        CommissionStatement,
        PerisaiMembership,
        PerisaiOffice,
    )
    from contributions.commissions.services import CommissionError, approve_statement

    office = PerisaiOffice.objects.create(code="KP-2", name="Wadah Dua", branch=branches["BDG"])
    PerisaiMembership.objects.create(office=office, agent=agent.staff, from_month=date(2026, 1, 1))
    pay_at(new_participant(agent, "2026-11-02"), "2026-11-03", 2, "OFF3")
    compute("2026-11")
    st = CommissionStatement.objects.get(kind="office", office=office, month=date(2026, 11, 1))
    with pytest.raises(CommissionError) as refused:
        approve_statement(statement_id=st.pk, by=admin_user)
    assert refused.value.code == "agents_not_approved"
    approve_statement(statement_id=statement(agent, "2026-11").pk, by=admin_user)
    assert approve_statement(statement_id=st.pk, by=admin_user).status == "approved"


# --- immutability in the database ----------------------------------------------------------------
def _refused(sql: str, params: list[Any]) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, params)
    except IntegrityError:
        return True
    return False


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_an_approved_statement_and_its_lines_refuse_raw_sql_changes(
    agent: Any, admin_user: Any, new_participant: Any
) -> None:
    from contributions.commissions.services import approve_statement, mark_paid

    pay_at(new_participant(agent, "2026-11-02"), "2026-11-03", 1, "IMM")
    compute("2026-11")
    st = statement(agent, "2026-11")
    line = st.lines.first()
    # a draft may change (the recomputation does it)
    assert not _refused(
        "UPDATE contributions_commissionstatement SET total = total WHERE id = %s", [st.pk]
    )
    approve_statement(statement_id=st.pk, by=admin_user)
    sqls = [
        ("UPDATE contributions_commissionstatement SET total = 1 WHERE id = %s", [st.pk]),
        ("UPDATE contributions_commissionstatement SET status = 'draft' WHERE id = %s", [st.pk]),
        ("DELETE FROM contributions_commissionstatement WHERE id = %s", [st.pk]),
        ("UPDATE contributions_commissionline SET amount = 0 WHERE id = %s", [line.pk]),
        ("DELETE FROM contributions_commissionline WHERE id = %s", [line.pk]),
        (
            "INSERT INTO contributions_commissionline (statement_id, kind, months, base, rate_bp,"
            " amount, note) VALUES (%s, 'fee', 0, 0, 0, 5, 'x')",
            [st.pk],
        ),
        (  # paying may not change anything else
            "UPDATE contributions_commissionstatement SET status = 'paid', paid_at = now(),"
            " paid_by_id = %s, total = total + 1 WHERE id = %s",
            [admin_user.pk, st.pk],
        ),
    ]
    assert [sql for sql, params in sqls if not _refused(sql, params)] == []
    paid = mark_paid(statement_id=st.pk, by=admin_user, reference="TRF-1")
    assert paid.status == "paid"
    assert _refused(
        "UPDATE contributions_commissionstatement SET payment_reference = 'x' WHERE id = %s",
        [st.pk],
    )
    compute("2026-11")  # recomputing leaves a closed statement alone
    paid.refresh_from_db()
    assert (paid.status, paid.total, paid.payment_reference) == ("paid", st.total, "TRF-1")


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_every_step_is_audited_with_who(agent: Any, admin_user: Any, new_participant: Any) -> None:
    from bpjsportal.audit.selectors import history_of

    pay_at(new_participant(agent, "2026-11-02"), "2026-11-03", 1, "AUD")
    compute("2026-11")
    st = statement(agent, "2026-11")
    c = login_as(Client(), admin_user)
    assert c.post(f"/commissions/{st.pk}/approve/").status_code == 302
    assert c.post(f"/commissions/{st.pk}/paid/", {"reference": "TRF-7"}).status_code == 302
    steps = {}
    for entry in history_of(st):
        for change in entry.as_dict()["changes"]:
            if change["field"] == "status":
                steps[(change["old"], change["new"])] = entry.actor
    assert set(steps) == {(None, "draft"), ("draft", "approved"), ("approved", "paid")}, steps
    assert admin_user.username in steps[("draft", "approved")]
    assert admin_user.username in steps[("approved", "paid")]


# --- pages: scope, steps, bad input --------------------------------------------------------------
@pytest.fixture
def world(
    agent: Any,
    other_agent: Any,
    supervisor: Any,
    admin_user: Any,
    branches: Any,
    new_participant: Any,
) -> dict[str, Any]:
    sibling = make_staff("agent_bdg2", "agent", branches["BDG"])
    for who, ref in ((agent, "W1"), (other_agent, "W2"), (sibling, "W3")):
        pay_at(new_participant(who, "2026-11-02"), "2026-11-03", 1, ref)
    compute("2026-11")
    return {
        "mine": statement(agent, "2026-11"),
        "sibling": statement(sibling, "2026-11"),
        "other": statement(other_agent, "2026-11"),
    }


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_each_role_sees_exactly_its_statements(
    world: dict[str, Any], agent: Any, supervisor: Any, admin_user: Any
) -> None:
    from enrollment.models import StaffProfile

    regional = make_staff("region_jabar", "agent", agent.staff.branch)
    StaffProfile.objects.filter(user=regional).update(
        role="regional_admin", branch=None, province_id="32", agent_code=None
    )
    expect = {
        agent: {"mine"},
        supervisor: {"mine", "sibling"},
        regional: {"mine", "sibling"},
        admin_user: {"mine", "sibling", "other"},
    }
    for user, visible in expect.items():
        c = login_as(Client(), user)
        listing = c.get("/commissions/").content.decode()
        for key, st in world.items():
            got = c.get(f"/commissions/{st.pk}/").status_code
            assert got == (200 if key in visible else 404), (user.username, key, got)
            assert (f'data-statement="{st.pk}"' in listing) == (key in visible)


def _figure(body: str, testid: str) -> int:
    import re

    found = re.search(rf'data-testid="{testid}">Rp ([0-9.,]+)<', body)
    assert found, testid
    return int(re.sub(r"[.,]", "", found.group(1)))


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_the_agent_sees_earnings_draft_and_why(
    world: dict[str, Any], agent: Any, admin_user: Any, new_participant: Any
) -> None:
    from contributions.commissions.services import approve_statement

    c = login_as(Client(), agent)
    body = c.get(f"/commissions/{world['mine'].pk}/").content.decode()
    assert 'data-kind="incentive" data-note="band1"' in body
    assert 'data-kind="fee" data-note="below_minimum"' in body  # one new NIK, minimum 25
    pay_at(new_participant(agent, "2026-12-01"), "2026-12-01", 1, "DRAFT-DEC")
    compute("2026-12")
    december = statement(agent, "2026-12")
    listing = c.get("/commissions/").content.decode()
    assert _figure(listing, "earned-to-date") == 0
    assert _figure(listing, "draft-total") == world["mine"].total + december.total
    assert f"/commissions/{december.pk}/" in listing.split('data-testid="this-month"')[1]
    approve_statement(statement_id=world["mine"].pk, by=admin_user)
    listing = c.get("/commissions/?month=2026-12").content.decode()
    assert _figure(listing, "earned-to-date") == world["mine"].total
    assert _figure(listing, "draft-total") == december.total


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_only_admins_approve_pay_and_export(
    world: dict[str, Any], agent: Any, supervisor: Any, admin_user: Any
) -> None:
    st = world["mine"]
    for user in (agent, supervisor):
        c = login_as(Client(), user)
        assert c.post(f"/commissions/{st.pk}/approve/").status_code == 403
        assert c.post(f"/commissions/{st.pk}/paid/").status_code == 403
        assert c.get("/commissions/export/2026-11.csv").status_code == 403
    st.refresh_from_db()
    assert st.status == "draft"


def _message(response: Any) -> str:
    return " ".join(str(m) for m in response.context["messages"])


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_bad_steps_get_clear_errors_never_500(world: dict[str, Any], admin_user: Any) -> None:
    from contributions.commissions.services import CommissionError, compute_month

    c = login_as(Client(), admin_user)
    c.post("/i18n/setlang/", {"language": "en"})
    st = world["mine"]
    r = c.post(f"/commissions/{st.pk}/paid/", follow=True)
    assert r.status_code == 200
    assert "Only an approved statement can be marked paid." in _message(r)
    assert c.post(f"/commissions/{st.pk}/approve/").status_code == 302
    r = c.post(f"/commissions/{st.pk}/approve/", follow=True)
    assert "This statement is already approved." in _message(r)
    assert c.post(f"/commissions/{st.pk}/paid/", {"reference": "TRF-9"}).status_code == 302
    r = c.post(f"/commissions/{st.pk}/approve/", follow=True)
    assert "This statement is already paid." in _message(r)
    r = c.post(f"/commissions/{st.pk}/paid/", {"reference": "again"}, follow=True)
    assert "This statement is already paid." in _message(r)
    st.refresh_from_db()
    assert (st.status, st.payment_reference) == ("paid", "TRF-9")
    r = c.post(f"/commissions/{world['sibling'].pk}/approve/", follow=True)
    assert "The statement is approved." in _message(r)
    r = c.post(f"/commissions/{world['sibling'].pk}/paid/", {"reference": "x" * 65}, follow=True)
    assert "at most 64 characters" in _message(r)
    assert c.post("/commissions/999999/approve/").status_code == 404
    for bad in ("2026-13", "26-11", "2026-1x", "x"):
        r = c.get(f"/commissions/export/{bad}.csv")
        assert r.status_code == 400 and b"YYYY-MM" in r.content, bad
    assert c.get("/commissions/export/2026-11.pdf").status_code == 400
    r = c.get("/commissions/?month=2026-99")
    assert r.status_code == 200 and "YYYY-MM" in _message(r)
    with pytest.raises(CommissionError) as exc:
        compute_month(month=date(2027, 1, 1))
    assert exc.value.code == "future_month"


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_a_draft_of_a_month_not_over_cannot_be_approved(
    agent: Any, admin_user: Any, new_participant: Any
) -> None:
    from contributions.commissions.services import CommissionError, approve_statement

    pay_at(new_participant(agent, "2026-12-01"), "2026-12-01", 1, "DEC")
    compute("2026-12")
    with pytest.raises(CommissionError) as exc:
        approve_statement(statement_id=statement(agent, "2026-12").pk, by=admin_user)
    assert exc.value.code == "month_not_over"


# --- export ---------------------------------------------------------------------------------------
@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_export_holds_the_approved_statements_only(world: dict[str, Any], admin_user: Any) -> None:
    from contributions.commissions.services import approve_statement

    approve_statement(statement_id=world["mine"].pk, by=admin_user)
    approve_statement(statement_id=world["other"].pk, by=admin_user)
    c = login_as(Client(), admin_user)
    r = c.get("/commissions/export/2026-11.csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert sorted(int(row["statement"]) for row in rows) == sorted(
        [world["mine"].pk, world["other"].pk]
    )
    mine = next(row for row in rows if int(row["statement"]) == world["mine"].pk)
    assert (mine["code"], mine["month"], mine["status"]) == ("A-agent_bdg", "2026-11", "approved")
    assert int(mine["total"]) == world["mine"].total
    r = c.get("/commissions/export/2026-11.xlsx")
    assert r.status_code == 200
    sheet = load_workbook(io.BytesIO(r.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "statement" and len(values) == 3
    assert {row[0] for row in values[1:]} == {world["mine"].pk, world["other"].pk}


# --- commands ---------------------------------------------------------------------------------
@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_the_command_computes_last_month_and_refuses_a_bad_one(
    agent: Any, new_participant: Any
) -> None:
    from django.core.management import CommandError, call_command

    pay_at(new_participant(agent, "2026-11-02"), "2026-11-03", 1, "CMD")
    out = io.StringIO()
    call_command("compute_commissions", stdout=out)
    assert out.getvalue().startswith("2026-11: 1 agent")
    assert statement(agent, "2026-11").incentive_total > 0
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("compute_commissions", "--month", "2026/11")


def test_prior_niks_are_loaded_as_digests_keeping_the_earliest_day(
    refdata: Any, tmp_path: Any
) -> None:
    from django.core.management import CommandError, call_command

    from contributions.commissions.models import PriorBpuNik
    from enrollment import pii

    nik = nik_for(serial=811)
    path = tmp_path / "seen.csv"
    path.write_text(f"nik,first_registered_on\n{nik},2021-05-01\n{nik},2019-02-03\n")
    call_command("load_prior_bpu_niks", str(path), stdout=io.StringIO())
    (row,) = PriorBpuNik.objects.all()
    assert bytes(row.nik_digest) == pii.nik_digest(nik)
    assert row.first_registered_on == date(2019, 2, 3)
    path.write_text("nik,first_registered_on\n1234,2021-05-01\n")
    with pytest.raises(CommandError, match="line 2"):
        call_command("load_prior_bpu_niks", str(path), stdout=io.StringIO())


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_the_beat_task_computes_last_month(agent: Any, new_participant: Any) -> None:
    from django.conf import settings

    from contributions.tasks import compute_commissions

    beat = {v["task"] for v in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "contributions.compute_commissions" in beat
    pay_at(new_participant(agent, "2026-11-02"), "2026-11-03", 1, "BEAT")
    assert compute_commissions() == {"agent_statements": 1, "office_statements": 0, "lines": 2}
    assert compute_commissions("2026-11")["lines"] == 2  # idempotent
    # every night, this month's draft so far (what the agent's "this month" card shows)
    nightly = [
        v for v in settings.CELERY_BEAT_SCHEDULE.values() if v.get("kwargs", {}).get("current")
    ]
    assert [v["task"] for v in nightly] == ["contributions.compute_commissions"]
    pay_at(new_participant(agent, "2026-12-01"), "2026-12-01", 1, "BEAT-DEC")
    assert compute_commissions(current=True)["agent_statements"] == 1
    assert statement(agent, "2026-12").status == "draft"


# --- review findings: credit on account, early drafts, office before its agents ---------------
@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_a_month_paid_from_credit_on_account_earns_no_second_incentive(
    agent: Any, new_participant: Any
) -> None:
    from contributions.models import Payment

    p = new_participant(agent, "2026-11-02")
    bank = pay_at(p, "2026-11-03", 1, "CR-BANK")
    credit = pay_at(p, "2026-11-04", 1, "CR-CREDIT")
    # the second month as contributions/credits.py posts it: the portal's own channel "credit"
    # (money that already earned its incentive when it was paid in as credit)
    Payment.objects.filter(pk=credit.payment_id).update(channel=Payment.Channel.CREDIT)
    compute("2026-11")
    earned = {line.ledger_entry_id for line in lines(statement(agent, "2026-11"), "incentive")}
    assert earned == {bank.pk}


@pytest.mark.clock("2026-12-02T03:00:00Z")
def test_a_draft_computed_before_its_month_ended_cannot_be_approved(
    agent: Any, admin_user: Any, new_participant: Any
) -> None:
    from contributions.commissions.services import CommissionError, approve_statement

    pay_at(new_participant(agent, "2026-11-02"), "2026-11-03", 1, "EARLY")
    with travel("2026-11-20T03:00:00"):
        compute("2026-11")  # a mid-month draft: what comes after the 20th is missing
    st = statement(agent, "2026-11")
    with pytest.raises(CommissionError) as refused:
        approve_statement(statement_id=st.pk, by=admin_user)
    assert refused.value.code == "computed_too_early"
    st.refresh_from_db()
    assert st.status == "draft"
    compute("2026-11")  # after the month: now it may be approved
    assert approve_statement(statement_id=st.pk, by=admin_user).status == "approved"
