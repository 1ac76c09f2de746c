"""Field cash the participant's state refuses is held in suspense, never dropped.

The offline field app collects cash, issues a receipt number and syncs it later through
POST /api/v1/payments/ (reference = the receipt, paid_at = when it was collected). If the
participant paid meanwhile elsewhere, the price the phone quoted may no longer be the price:
with on_conflict "suspense" (agent clients only) the cash is held for the back office (202)
instead of refused, once per receipt, and settled with the suspense resolution
(contributions/suspense.py record_field_cash; docs/api.md "Field cash")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contributions.models import Coverage, Payment, SuspenseItem, SuspenseResolution
from contributions.suspense import SuspenseError, months_paid_by, open_items, resolve
from tests.api.conftest import Caller, next_nik, reg_body
from tests.conftest import login_as
from tests.contributions.conftest import assert_ledger_consistent
from tests.contributions.test_concurrency import run_together

# 10:00 WIB on 20 March 2026: the PP 50/2025 discount of the "other" sectors (a farmer's) starts
# in April, so a month paid elsewhere meanwhile moves the first month to pay into a cheaper one.
pytestmark = pytest.mark.clock("2026-03-20T03:00:00Z")

URL = "/api/v1/payments/"
RECEIPT = "FAB3K-000017"


def due(api: Caller, kpj: str, months: int = 1) -> dict[str, Any]:
    r = api.get("/api/v1/dues/", {"kpj": kpj, "months": months})
    assert r.status_code == 200, r.content
    return dict(r.json())


def cash(worker: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """The phone's sync of its receipt: the cash it quoted and collected, offline."""
    body = {
        "kpj_number": worker["kpj_number"],
        "amount": worker["quoted"],
        "months": 1,
        "reference": RECEIPT,
        "paid_at": worker["collected_at"],
        "on_conflict": "suspense",
    }
    body.update(kw)
    return body


@pytest.fixture
def worker(agent_api: Caller, admin_api: Caller) -> dict[str, Any]:
    """A farmer the agent registered, and the cash the agent collected from them offline for
    this month (March: full price) - not yet synced."""
    r = agent_api.post("/api/v1/participants/", reg_body(nik=next_nik()))
    assert r.status_code == 201, r.content
    worker = dict(r.json())
    quote = due(admin_api, worker["kpj_number"])
    assert quote["first_month"] == "2026-03-01"
    worker["quoted"] = quote["amount"]
    worker["collected_at"] = timezone.now().isoformat()
    return worker


@pytest.fixture
def paid_meanwhile(worker: dict[str, Any], channel_api: Caller, admin_api: Caller) -> int:
    """While the phone was offline the worker paid March at a bank: the next month to pay is
    April, a discounted month. Returns what one month costs now."""
    r = channel_api.post(
        URL,
        {
            "kpj_number": worker["kpj_number"],
            "amount": worker["quoted"],
            "months": 1,
            "reference": "BANK-1",
            "paid_at": timezone.now().isoformat(),
        },
    )
    assert r.status_code == 201, r.content
    now = due(admin_api, worker["kpj_number"])
    assert now["first_month"] == "2026-04-01" and now["amount"] < worker["quoted"]
    return int(now["amount"])


def test_refuse_stays_the_default(
    agent_api: Caller, worker: dict[str, Any], paid_meanwhile: int
) -> None:
    body = cash(worker)
    del body["on_conflict"]
    for sent in (body, {**body, "on_conflict": "refuse"}):
        r = agent_api.post(URL, sent)
        assert r.status_code == 400, r.content
        assert r.json()["code"] == "amount_mismatch" and r.json()["expected"] == paid_meanwhile
    assert not SuspenseItem.objects.exists()
    assert Payment.objects.count() == 1  # the bank's


def test_cash_the_participants_state_refuses_is_held_in_suspense(
    agent_api: Caller, agent: Any, worker: dict[str, Any], paid_meanwhile: int
) -> None:
    r = agent_api.post(URL, cash(worker))
    assert r.status_code == 202, r.content
    body = r.json()
    item = SuspenseItem.objects.get()
    assert body == {
        "result": "suspense",
        "code": "amount_mismatch",
        "message": body["message"],
        "suspense": {
            "id": item.pk,
            "amount": worker["quoted"],
            "reference": RECEIPT,
            "paid_at": body["suspense"]["paid_at"],
            "reason": "field_conflict",
        },
        "expected": paid_meanwhile,
    }
    assert body["message"] and "04/2026" in body["message"]  # the refusal, in its own words
    assert item.bill is None and item.client_id == agent_api.client.pk
    assert (item.channel, item.reference, item.amount, item.months) == (
        "agent", RECEIPT, worker["quoted"], 1,
    )  # fmt: skip
    assert item.paid_at == datetime.fromisoformat(worker["collected_at"])
    assert (item.refusal_code, item.expected) == ("amount_mismatch", paid_meanwhile)
    assert list(open_items()) == [item]
    # nothing posted for the receipt: the coverage is the bank's month only
    assert Payment.objects.count() == 1
    assert Coverage.objects.get(pk=worker["id"]).paid_through.isoformat() == "2026-03-01"
    assert_ledger_consistent()


def test_a_repeat_of_the_receipt_answers_the_same_and_holds_it_once(
    agent_api: Caller, worker: dict[str, Any], paid_meanwhile: int
) -> None:
    first = agent_api.post(URL, cash(worker))
    assert first.status_code == 202, first.content
    again = agent_api.post(URL, cash(worker))
    assert again.status_code == 202 and again.json() == first.json()
    # the receipt is taken: sent again without on_conflict it is still the item, never posted
    plain = cash(worker)
    del plain["on_conflict"]
    assert agent_api.post(URL, plain).json() == first.json()
    assert SuspenseItem.objects.count() == 1 and Payment.objects.count() == 1
    # the same receipt with other cash is a conflict
    for changed in (
        {"amount": worker["quoted"] + 100},
        {"months": 2, "amount": 2 * worker["quoted"]},
        {"paid_at": (timezone.now() - timedelta(minutes=5)).isoformat()},
    ):
        r = agent_api.post(URL, cash(worker, **changed))
        assert r.status_code == 409, (changed, r.content)
        assert r.json()["code"] == "reference_conflict"
    assert SuspenseItem.objects.count() == 1 and Payment.objects.count() == 1


def test_another_agents_receipt_number_is_a_conflict(
    make_caller: Any, agent: Any, worker: dict[str, Any], paid_meanwhile: int
) -> None:
    mine = make_caller("agent", agent=agent.staff)
    other_device = make_caller("agent", agent=agent.staff)
    assert mine.post(URL, cash(worker)).status_code == 202
    r = other_device.post(URL, cash(worker))
    assert r.status_code == 409 and r.json()["code"] == "reference_conflict"
    assert SuspenseItem.objects.count() == 1


def test_a_posted_receipt_sent_again_is_the_payments_replay(
    agent_api: Caller, worker: dict[str, Any], channel_api: Caller
) -> None:
    first = agent_api.post(URL, cash(worker))
    assert first.status_code == 201, first.content
    assert first.json()["channel"] == "agent" and first.json()["payer"] == "agent"
    # the bank pays the next month; the phone, not sure its sync arrived, sends the receipt again
    r = channel_api.post(
        URL,
        {
            "kpj_number": worker["kpj_number"],
            "amount": worker["quoted"],  # April's price would differ: refused, nothing changes
            "months": 1,
            "reference": "BANK-2",
            "paid_at": timezone.now().isoformat(),
        },
    )
    assert r.status_code == 400
    again = agent_api.post(URL, cash(worker))
    assert again.status_code == 200 and again.json() == first.json()
    assert not SuspenseItem.objects.exists() and Payment.objects.count() == 1


@pytest.mark.parametrize("scope", ["channel", "partner", "admin"])
def test_only_agent_clients_may_hold_cash(
    scope: str, make_caller: Any, partners: dict[str, Any], worker: dict[str, Any]
) -> None:
    kw = {"channel": {"payment_channel": "bank"}, "partner": {"partner": partners["gnl"]}}
    api = make_caller(scope, **kw.get(scope, {}))
    body = cash(worker, reference="OTHER-1")
    if scope == "admin":
        body.update(channel="agent", payer="agent")
    r = api.post(URL, body)
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "on_conflict_not_allowed"
    english = api.post(URL, body, {"Accept-Language": "en"}).json()["message"]
    assert "agent client" in english and "suspense" in english
    assert not SuspenseItem.objects.exists() and not Payment.objects.exists()


def test_an_unknown_on_conflict_is_a_validation_error(
    agent_api: Caller, worker: dict[str, Any]
) -> None:
    r = agent_api.post(URL, cash(worker, on_conflict="later"))
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["on_conflict"]


def test_the_requests_own_mistakes_are_refused_not_held(
    agent_api: Caller, worker: dict[str, Any], paid_meanwhile: int
) -> None:
    too_old = timezone.now() - timedelta(days=settings.PAYMENT_MAX_AGE_DAYS + 2)
    for n, (changed, code) in enumerate(
        [
            ({"paid_at": (timezone.now() + timedelta(days=2)).isoformat()}, "paid_at_future"),
            ({"paid_at": too_old.isoformat()}, "paid_at_too_old"),
            ({"months": 13}, "months_out_of_range"),
            ({"amount": 0}, "validation_error"),
        ]
    ):
        r = agent_api.post(URL, cash(worker, reference=f"BAD-{n}", **changed))
        assert r.status_code == 400, (changed, r.content)
        assert r.json()["code"] == code, (changed, r.json())
    r = agent_api.post(URL, cash({**worker, "kpj_number": "00000000000"}, reference="BAD-9"))
    assert r.status_code == 404 and r.json()["code"] == "participant_unknown"
    assert not SuspenseItem.objects.exists()


def test_the_registering_agents_cash_may_predate_the_registrations_arrival(
    agent_api: Caller, worker: dict[str, Any]
) -> None:
    """Registered and paid offline yesterday; the registration synced today: the server's
    registration day is after the collection, and the cash is still posted, with its own
    collection time (only the age limit applies)."""
    yesterday = timezone.now() - timedelta(days=1)
    r = agent_api.post(URL, cash(worker, paid_at=yesterday.isoformat()))
    assert r.status_code == 201, r.content
    payment = Payment.objects.get(reference=RECEIPT)
    assert payment.paid_at == yesterday and payment.period_start.isoformat() == "2026-03-01"
    assert not SuspenseItem.objects.exists()


def test_the_back_office_applies_a_held_receipt_as_the_agents_payment(
    agent_api: Caller, agent: Any, admin_user: Any, worker: dict[str, Any], paid_meanwhile: int
) -> None:
    held = agent_api.post(URL, cash(worker)).json()
    item = SuspenseItem.objects.get(pk=held["suspense"]["id"])
    # March's full price pays exactly two discounted months from April
    assert worker["quoted"] == 2 * paid_meanwhile and months_paid_by(item) == 2
    resolution = resolve(item=item, action="apply", reason="two months", user=admin_user)
    payment = Payment.objects.get(pk=resolution.payment_id)
    assert (payment.amount, payment.months, payment.period_start.isoformat()) == (
        worker["quoted"], 2, "2026-04-01",
    )  # fmt: skip
    assert (payment.channel, payment.payer, payment.collected_by) == ("agent", "agent", agent.staff)
    assert payment.reference == f"{RECEIPT}#{agent_api.client.pk}"
    assert payment.paid_at == item.paid_at
    assert Coverage.objects.get(pk=worker["id"]).paid_through.isoformat() == "2026-05-01"
    assert not open_items().exists()
    # the receipt sent again is still the held item's answer, not a second payment
    assert agent_api.post(URL, cash(worker)).json() == held
    assert Payment.objects.count() == 2 and SuspenseItem.objects.count() == 1
    assert_ledger_consistent()


def test_a_held_receipt_that_cannot_be_applied_is_refunded(
    agent_api: Caller, admin_user: Any, worker: dict[str, Any]
) -> None:
    # a wrong amount typed into nothing the phone offers: no whole number of months costs it
    held = agent_api.post(URL, cash(worker, amount=worker["quoted"] + 1))
    assert held.status_code == 202 and held.json()["code"] == "amount_mismatch"
    item = SuspenseItem.objects.get()
    with pytest.raises(SuspenseError) as refused:
        resolve(item=item, action="apply", reason="try", user=admin_user)
    assert refused.value.code == "amount_not_whole_months"
    refund = resolve(item=item, action="refund", reason="cash back to the worker", user=admin_user)
    assert refund.action == "refund" and refund.payment is None
    assert Payment.objects.count() == 0


def test_the_back_office_pages_show_and_settle_a_held_receipt(
    agent_api: Caller, admin_user: Any, worker: dict[str, Any], paid_meanwhile: int
) -> None:
    from bpjsportal.audit.selectors import history_for

    agent_api.post(URL, cash(worker))
    item = SuspenseItem.objects.get()
    client = Client()
    login_as(client, admin_user, with_password=True)
    changelist = reverse("admin:contributions_suspenseitem_changelist")
    listing = client.get(changelist)
    assert listing.status_code == 200 and RECEIPT.encode() in listing.content
    assert client.get(changelist, {"q": RECEIPT}).status_code == 200
    assert client.get(changelist, {"reason__exact": "field_conflict"}).status_code == 200
    detail = client.get(reverse("admin:contributions_suspenseitem_change", args=[item.pk]))
    assert detail.status_code == 200 and RECEIPT.encode() in detail.content
    ask = client.post(changelist, {"action": "apply_suspense", "_selected_action": [item.pk]})
    assert ask.status_code == 200 and RECEIPT.encode() in ask.content
    done = client.post(
        changelist,
        {"action": "apply_suspense", "_selected_action": [item.pk], "reason": "two months"},
        follow=True,
    )
    assert done.status_code == 200
    resolution = SuspenseResolution.objects.get(suspense=item)
    assert resolution.action == "apply" and resolution.resolved_by == admin_user
    assert [e.label for e in history_for(item)] == ["insert"]  # audited, bill and all


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(2))
def test_concurrent_repeats_of_a_receipt_hold_it_once(
    attempt: int,
    tx_refdata: Any,
    agent_api: Caller,
    worker: dict[str, Any],
    paid_meanwhile: int,
) -> None:
    def send() -> tuple[int, Any]:
        phone = Caller(Client(), agent_api.token, agent_api.client)
        r = phone.post(URL, cash(worker))
        return r.status_code, r.json()

    results = run_together(send, send, send)
    assert [code for code, _body in results] == [202, 202, 202], results
    assert results[0][1] == results[1][1] == results[2][1]
    assert SuspenseItem.objects.count() == 1
