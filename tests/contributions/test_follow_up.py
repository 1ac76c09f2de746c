"""The follow-up queue (contributions/follow_up): order, promises, filters, scope, bad input,
append-only outcomes, the outcomes per month and the WhatsApp link.

The clock is pinned at 10:00 WIB on Wednesday 10 June 2026: a participant registered this month
has June as first unpaid month (due Monday 15 June) and, with 3 months of grace, lapses on
16 September 2026 (the day after the due date of September, Tuesday 15th)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contributions import coverage as rules
from contributions.follow_up import selectors
from contributions.follow_up.models import FollowUpOutcome
from contributions.follow_up.services import FollowUpError, record_outcome
from contributions.models import Coverage, Reminder
from contributions.rates import add_months
from contributions.services import refresh_coverage_statuses
from tests.conftest import VILLAGE, login_as

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-06-10T03:00:00Z")]

TODAY = date(2026, 6, 10)
JUNE = date(2026, 6, 1)
QUEUE = "/arrears/"


def client_for(user: Any) -> Client:
    c = Client()
    login_as(c, user, with_password=True)
    return c


def order_of(client: Client, query: str = "") -> list[int]:
    response = client.get(QUEUE + query)
    assert response.status_code == 200, response.content[:300]
    return [row.participant.pk for row in response.context["rows"]]


def record(client: Client, participant: Any, **data: str) -> Any:
    return client.post(reverse("contributions:follow_up_record", args=[participant.pk]), data)


@pytest.fixture
def mine(make_participant: Any, agent: Any) -> Any:
    def _make(**kw: Any) -> Any:
        return make_participant(registered_by=agent.staff, **kw)

    return _make


def test_clock_is_the_one_the_docstring_assumes() -> None:
    assert timezone.localdate() == TODAY
    assert rules.lapse_date(JUNE) == date(2026, 9, 16)


def test_closest_to_lapse_first_then_amount_due_then_lapsed(
    mine: Any, agent: Any, other_agent: Any, make_participant: Any, pay: Any
) -> None:
    lapsed = mine(start_month=add_months(JUNE, -7))
    newer = mine()
    newer_richer = mine(declared_income=1_400_000)
    oldest = mine(start_month=add_months(JUNE, -2))
    middle = mine(start_month=add_months(JUNE, -1))
    active = mine()
    pay(active)
    make_participant(registered_by=other_agent.staff)  # not mine
    refresh_coverage_statuses()
    response = client_for(agent).get(QUEUE)
    rows = response.context["rows"]
    assert [r.participant.pk for r in rows] == [
        oldest.pk,
        middle.pk,
        newer_richer.pk,
        newer.pk,
        lapsed.pk,
    ]
    # days left: the lapse rule of coverage.py, ascending among those in grace
    grace = [r for r in rows if r.status == "grace"]
    for r in grace:
        cov = Coverage.objects.get(pk=r.participant.pk)
        expected = rules.lapse_date(rules.next_unpaid(cov.paid_through, cov.start_month))
        assert r.lapse_date == expected and r.days_left == (expected - TODAY).days
    assert [r.days_left for r in grace] == sorted(r.days_left for r in grace)
    assert grace[-1].days_left == (date(2026, 9, 16) - TODAY).days == 98
    # the value at stake: same months due, the larger amount first
    assert rows[2].amount_due is not None and rows[3].amount_due is not None
    assert rows[2].months_due == rows[3].months_due == 1
    assert rows[2].amount_due > rows[3].amount_due
    assert rows[-1].days_left is None and rows[-1].status == "lapsed"
    # each card shows the amount due and the days left; the old URL still answers
    html = response.content.decode()
    assert f"Rp {rows[0].amount_due:,}".replace(",", ".") in html
    assert "98" in html
    assert selectors.follow_up_queue(agent, as_of=TODAY).count() == 5


def test_a_promise_leaves_the_top_and_comes_back_on_its_date(mine: Any, agent: Any) -> None:
    first = mine(start_month=add_months(JUNE, -2))
    second = mine(start_month=add_months(JUNE, -1))
    third = mine()
    refresh_coverage_statuses()
    client = client_for(agent)
    assert order_of(client) == [first.pk, second.pk, third.pk]
    response = record(client, first, outcome="promised", promised_date="2026-06-20", note="gajian")
    assert response.status_code == 302 and response["Location"].endswith(f"#p{first.pk}")
    saved = FollowUpOutcome.objects.get()
    assert (saved.outcome, saved.promised_date, saved.note) == (
        "promised",
        date(2026, 6, 20),
        "gajian",
    )
    assert saved.recorded_by == agent and saved.recorded_on == TODAY
    assert order_of(client) == [second.pk, third.pk, first.pk]  # waits at the bottom
    assert order_of(client, "?status=promised") == [first.pk]
    with time_machine.travel(datetime(2026, 6, 20, 3, 0, tzinfo=UTC), tick=False):
        assert timezone.localdate() == date(2026, 6, 20)
        client = client_for(agent)  # a new day, a new login (sessions expire)
        rows = client.get(QUEUE).context["rows"]
        assert [r.participant.pk for r in rows] == [first.pk, second.pk, third.pk]
        assert rows[0].promise_due and not rows[1].promise_due
    with time_machine.travel(datetime(2026, 6, 25, 3, 0, tzinfo=UTC), tick=False):
        assert order_of(client_for(agent))[0] == first.pk  # a broken promise stays on top


def test_a_payment_after_the_promise_ends_it(mine: Any, agent: Any, pay: Any) -> None:
    from contributions.follow_up.selectors import GROUP_GRACE

    p = mine(start_month=add_months(JUNE, -2))
    other = mine(start_month=add_months(JUNE, -2))
    refresh_coverage_statuses()
    client = client_for(agent)
    record(client, p, outcome="promised", promised_date="2026-06-12")
    pay(p, months=1)  # received after the promise: April paid, still behind (May, June)
    refresh_coverage_statuses()
    rows = client.get(QUEUE).context["rows"]
    # the promise is settled: p is back among those in grace, ordered by days left (other,
    # April unpaid, lapses first) — neither waiting at the bottom for 12 June nor sorted
    # ahead of others by its old promised date
    assert [r.participant.pk for r in rows] == [other.pk, p.pk]
    assert [r.participant.group for r in rows] == [GROUP_GRACE, GROUP_GRACE]
    assert not any(r.promise_due for r in rows)


def test_moved_and_died_leave_the_queue_until_a_later_outcome(mine: Any, agent: Any) -> None:
    moved, died, stays = mine(), mine(), mine()
    refresh_coverage_statuses()
    client = client_for(agent)
    record(client, moved, outcome="moved", note="ke Batam")
    record(client, died, outcome="died")
    assert order_of(client) == [stays.pk]
    assert set(order_of(client, "?status=out")) == {moved.pk, died.pk}
    record(client, moved, outcome="cannot_pay", note="back from Batam")  # the undo
    assert set(order_of(client)) == {moved.pk, stays.pk}
    assert FollowUpOutcome.objects.count() == 3  # nothing was changed, one more was added


def test_wrong_number_flags_the_phone_until_it_changes(mine: Any, agent: Any) -> None:
    p = mine()
    refresh_coverage_statuses()
    client = client_for(agent)
    record(client, p, outcome="wrong_number")
    response = client.get(QUEUE)
    assert response.context["rows"][0].phone_flagged
    assert 'data-testid="fu-wrong-number"' in response.content.decode()
    from enrollment.models import Participant

    Participant.objects.filter(pk=p.pk).update(phone="+6285711112222")
    assert not client.get(QUEUE).context["rows"][0].phone_flagged


def test_filters_by_village_and_by_status(mine: Any, agent: Any) -> None:
    from enrollment.models import Region

    elsewhere = (
        Region.objects.filter(level=4, code__startswith="32.73.05.").exclude(code=VILLAGE).first()
    )
    assert elsewhere is not None
    here_grace = mine()
    there_grace = mine(village=elsewhere.code)
    here_lapsed = mine(start_month=add_months(JUNE, -7))
    refresh_coverage_statuses()
    client = client_for(agent)
    assert order_of(client, f"?village={VILLAGE}") == [here_grace.pk, here_lapsed.pk]
    assert order_of(client, f"?village={elsewhere.code}") == [there_grace.pk]
    assert order_of(client, "?status=lapsed") == [here_lapsed.pk]
    assert set(order_of(client, "?status=grace")) == {here_grace.pk, there_grace.pk}
    assert order_of(client, f"?status=grace&village={elsewhere.code}") == [there_grace.pk]
    villages = dict(client.get(QUEUE).context["villages"])
    assert set(villages) == {VILLAGE, elsewhere.code}


@pytest.mark.parametrize(
    ("query", "words"),
    [("?status=paid", "Unknown status filter"), ("?village=99.99", "Unknown village")],
)
def test_bad_filters_are_a_400_that_names_the_problem(agent: Any, query: str, words: str) -> None:
    from django.utils import translation

    client = client_for(agent)
    client.cookies["django_language"] = "en"
    with translation.override("en"):
        response = client.get(QUEUE + query, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert words in response.content.decode()


def test_paginated(mine: Any, agent: Any) -> None:
    for _ in range(27):
        mine()
    refresh_coverage_statuses()
    client = client_for(agent)
    page1 = client.get(QUEUE)
    assert page1.context["page"].paginator.num_pages == 2 and len(page1.context["rows"]) == 25
    assert len(client.get(QUEUE + "?page=2").context["rows"]) == 2


def test_scope_agent_own_supervisor_branch(
    mine: Any, agent: Any, other_agent: Any, supervisor: Any, make_participant: Any
) -> None:
    own = mine()
    theirs = make_participant(registered_by=other_agent.staff)
    refresh_coverage_statuses()
    assert order_of(client_for(agent)) == [own.pk]
    assert order_of(client_for(supervisor)) == [own.pk]  # the Bandung branch only
    response = record(client_for(agent), theirs, outcome="paid")
    assert response.status_code == 404
    assert not FollowUpOutcome.objects.exists()
    with pytest.raises(FollowUpError) as err:
        record_outcome(participant=theirs, outcome="paid", recorded_by=agent)
    assert err.value.code == "not_in_scope"
    assert record(client_for(supervisor), own, outcome="paid").status_code == 302
    assert FollowUpOutcome.objects.get().recorded_by == supervisor


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"outcome": "promised", "promised_date": "2026-06-09"}, "promise_in_past"),
        ({"outcome": "promised"}, "promise_needs_date"),
        ({"outcome": "promised", "promised_date": "20-06-2026"}, None),
        ({"outcome": "maybe"}, "unknown_outcome"),
        ({"outcome": ""}, "unknown_outcome"),
        ({"outcome": "paid", "note": "x" * 501}, "note_too_long"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_written(
    mine: Any, agent: Any, data: dict[str, str], code: str | None
) -> None:
    p = mine()
    client = client_for(agent)
    response = record(client, p, **data)
    assert response.status_code == 302
    page = client.get(response["Location"].split("#")[0])
    shown = [str(m) for m in page.context["messages"]]
    assert len(shown) == 1 and shown[0].startswith(p.full_name)
    assert not FollowUpOutcome.objects.exists()
    if code is not None:
        kw: dict[str, Any] = {"outcome": data["outcome"], "note": data.get("note", "")}
        if data.get("promised_date"):
            kw["promised_date"] = date.fromisoformat(data["promised_date"])
        with pytest.raises(FollowUpError) as err:
            record_outcome(participant=p, recorded_by=agent, **kw)
        assert err.value.code == code


def test_a_promise_for_today_is_accepted_and_on_top_at_once(mine: Any, agent: Any) -> None:
    a, b = mine(start_month=add_months(JUNE, -1)), mine()
    refresh_coverage_statuses()
    client = client_for(agent)
    record(client, b, outcome="promised", promised_date="2026-06-10")
    assert order_of(client) == [b.pk, a.pk]


def test_a_date_on_another_outcome_is_refused_by_the_service(mine: Any, agent: Any) -> None:
    with pytest.raises(FollowUpError) as err:
        record_outcome(participant=mine(), outcome="paid", recorded_by=agent, promised_date=TODAY)
    assert err.value.code == "date_only_for_promise"


def test_outcomes_are_append_only_in_the_database(mine: Any, agent: Any) -> None:
    saved = record_outcome(participant=mine(), outcome="cannot_pay", recorded_by=agent)
    for sql in (
        "UPDATE contributions_followupoutcome SET outcome = 'paid' WHERE id = %s",
        "DELETE FROM contributions_followupoutcome WHERE id = %s",
    ):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [saved.pk])
    assert FollowUpOutcome.objects.get().outcome == "cannot_pay"
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
        cur.execute(  # the database refuses a promise in the past too
            "INSERT INTO contributions_followupoutcome (participant_id, outcome, promised_date,"
            " note, phone, recorded_by_id, recorded_at, recorded_on)"
            " VALUES (%s, 'promised', '2026-06-01', '', '', %s, now(), '2026-06-10')",
            [saved.participant_id, agent.pk],
        )


def test_outcomes_per_month_counts_and_promises_kept(
    mine: Any, agent: Any, other_agent: Any, make_participant: Any, pay: Any
) -> None:
    kept, broken, waiting, late = (mine(start_month=add_months(JUNE, -1)) for _ in range(4))
    with time_machine.travel(datetime(2026, 5, 20, 3, 0, tzinfo=UTC), tick=False):
        record_outcome(participant=kept, outcome="cannot_pay", recorded_by=agent)
        record_outcome(participant=broken, outcome="wrong_number", recorded_by=agent)
    record_outcome(
        participant=kept, outcome="promised", recorded_by=agent, promised_date=date(2026, 6, 10)
    )
    record_outcome(participant=broken, outcome="promised", recorded_by=agent, promised_date=TODAY)
    record_outcome(
        participant=waiting, outcome="promised", recorded_by=agent, promised_date=date(2026, 6, 30)
    )
    record_outcome(participant=late, outcome="moved", recorded_by=agent)
    pay(kept, months=1)  # on the promised day: kept
    theirs = make_participant(registered_by=other_agent.staff)
    record_outcome(participant=theirs, outcome="died", recorded_by=other_agent)  # not in scope

    with time_machine.travel(datetime(2026, 7, 2, 3, 0, tzinfo=UTC), tick=False):
        as_of = timezone.localdate()
        rows = selectors.outcomes_per_month(agent, as_of=as_of)
    assert [r["month"] for r in rows] == [date(2026, 6, 1), date(2026, 5, 1)]
    june, may = rows
    assert (june["total"], june["promised"], june["moved"], june["died"]) == (4, 3, 1, 0)
    assert june["promises_kept"] == 1  # kept paid on the day; broken did not; waiting did not
    assert june["promises_due"] == 3  # every June promise is past on 2 July
    assert (may["total"], may["cannot_pay"], may["wrong_number"], may["paid"]) == (2, 1, 1, 0)
    assert sum(r["total"] for r in selectors.outcomes_per_month(other_agent, as_of=as_of)) == 1


def test_supervisors_see_the_outcomes_table_agents_do_not(
    mine: Any, agent: Any, supervisor: Any
) -> None:
    record_outcome(participant=mine(), outcome="cannot_pay", recorded_by=agent)
    as_agent = client_for(agent).get(QUEUE)
    assert as_agent.context["summary"] is None
    assert 'data-testid="fu-summary"' not in as_agent.content.decode()
    as_supervisor = client_for(supervisor).get(QUEUE)
    assert as_supervisor.context["summary"][0]["cannot_pay"] == 1
    assert 'data-testid="fu-summary"' in as_supervisor.content.decode()


def _whatsapp(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == "wa.me"
    (text,) = parse_qs(parts.query)["text"]
    return parts.path.strip("/"), text


def test_whatsapp_link_carries_the_pay_link_and_the_number_in_wa_me_form(
    mine: Any, agent: Any
) -> None:
    p = mine(phone="081234567890", language="en", full_name="Siti Aminah")
    refresh_coverage_statuses()
    Reminder.objects.create(
        participant=p,
        kind="due_soon",
        period=JUNE,
        month_due=JUNE,
        planned_for=TODAY,
        send_after=timezone.now(),
        channel="sms",
        recipient=p.phone,
    )
    response = client_for(agent).get(QUEUE)
    row = response.context["rows"][0]
    number, text = _whatsapp(row.whatsapp_url)
    assert p.phone == "+6281234567890" and number == "6281234567890"
    assert row.pay_link.startswith("http") and "/b/" in row.pay_link
    assert text.endswith(f"Pay here: {row.pay_link}")
    amount = f"{row.amount_due:,}".replace(",", ".")
    assert text.startswith(
        f"Hello Siti, your BPJS Ketenagakerjaan BPU contribution (KPJ {p.kpj_number})"
    )
    assert f"Rp {amount}" in text and "16 September 2026" in text
    assert " " not in row.whatsapp_url and "+" not in urlsplit(row.whatsapp_url).query
    assert f'href="{row.whatsapp_url}"' in response.content.decode()  # nothing to escape
    assert row.tel_url == "tel:+6281234567890"


def test_whatsapp_without_a_pay_link_is_a_plain_message(mine: Any) -> None:
    lapsed = mine(start_month=add_months(JUNE, -7), language="en", full_name="Agus Salim")
    refresh_coverage_statuses()
    lapsed.refresh_from_db()
    (row,) = selectors.queue_rows(
        list(selectors.follow_up_queue(lapsed.registered_by.user, as_of=TODAY)), as_of=TODAY
    )
    _number, text = _whatsapp(row.whatsapp_url)
    assert row.pay_link == "" and "http" not in text
    assert "has lapsed" in text and text.endswith(
        "You can pay at a bank, Alfamart/Indomaret, an e-wallet or through me."
    )


@pytest.mark.parametrize("phone", ["", "+15551234567", "+62abc"])
def test_no_whatsapp_link_for_a_number_that_is_not_indonesian(phone: str) -> None:
    assert selectors.whatsapp_url(phone, "hi") == ""


def test_whatsapp_text_is_percent_encoded_utf8() -> None:
    url = selectors.whatsapp_url("+6281234567890", "Bayar Rp 16.800 & cek: https://x/b/a.b/ ✓")
    assert url.startswith("https://wa.me/6281234567890?text=Bayar%20Rp%2016.800%20%26%20cek%3A")
    assert url.endswith("%E2%9C%93")
