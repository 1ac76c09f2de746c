"""A channel's same-day void of its own notification (docs/api.md "Bills"): the payment is
reversed through the ledger and the bill opens again, a suspense item is settled as voided,
the same void again gets the same answer, and after the day the void is refused."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from contributions.models import (
    Bill,
    BillNotification,
    BillReversal,
    Coverage,
    LedgerEntry,
    SuspenseResolution,
)
from enrollment.api.signing import signature_header, signing_secret
from tests.api.conftest import Caller
from tests.api.test_bills import a_code, bill_url, paying, signed_post


def void(caller: Caller, code: str, reference: str, body: bytes = b"", **kw: Any) -> Any:
    header = kw.pop("header", None) or signature_header(body, signing_secret(caller.client))
    url = f"{bill_url(code)}payments/{reference}/reversal/"
    return caller.post(url, body, {"X-Signature": header})


def test_a_same_day_void_reverses_the_payment_and_opens_the_bill_again(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any]
) -> None:
    before = Coverage.objects.get(pk=person["id"]).paid_through
    bill = a_code(admin_api, person, months=2)
    paid = signed_post(channel_api, bill["code"], paying(bill, "PAY-1")).json()
    assert Coverage.objects.get(pk=person["id"]).paid_through != before
    body = json.dumps({"reason": "cashier keyed the wrong code"}).encode()
    r = void(channel_api, bill["code"], "PAY-1", body)
    assert r.status_code == 201, r.content
    answer = r.json()
    assert answer | {"reversal": 0} == {
        "status": "reversed", "code": bill["code"], "reference": "PAY-1", "reversal": 0,
        "amount": bill["amount"], "payment": paid["payment"],
        "paid_through": before and before.isoformat(),
        "bill_status": "open",
    }  # fmt: skip
    entry = LedgerEntry.objects.get(reverses__payment_id=paid["payment"])
    assert entry.amount == -bill["amount"] and "cashier keyed the wrong code" in entry.reason
    assert Coverage.objects.get(pk=person["id"]).paid_through == before
    assert channel_api.get(bill_url(bill["code"])).status_code == 200  # payable again
    again = void(channel_api, bill["code"], "PAY-1", body)
    assert again.status_code == 200 and again.json() == answer
    assert BillReversal.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="reversal").count() == 1
    # the payer pays again at the same till, with a new reference
    r = signed_post(channel_api, bill["code"], paying(bill, "PAY-2"))
    assert r.status_code == 201, r.content
    assert Bill.objects.get(code=bill["code"]).status == "paid"


def test_voiding_a_suspense_notification_settles_it_as_voided(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any]
) -> None:
    bill = a_code(admin_api, person)
    held = signed_post(channel_api, bill["code"], paying(bill, "ODD", amount=bill["amount"] + 7))
    assert held.status_code == 202
    r = void(channel_api, bill["code"], "ODD")
    assert r.status_code == 201, r.content
    assert r.json()["suspense"] == held.json()["suspense"] and r.json()["bill_status"] == "open"
    resolution = SuspenseResolution.objects.get(suspense_id=held.json()["suspense"])
    assert resolution.action == "void" and resolution.client_id == channel_api.client.pk
    assert not LedgerEntry.objects.filter(kind="reversal").exists()


def test_a_void_after_the_day_or_of_nothing_is_refused_and_writes_nothing(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any]
) -> None:
    bill = a_code(admin_api, person)
    assert signed_post(channel_api, bill["code"], paying(bill, "OLD")).status_code == 201
    BillNotification.objects.filter(reference="OLD").update(
        created_at=timezone.now() - timedelta(days=1)
    )
    r = void(channel_api, bill["code"], "OLD")
    assert r.status_code == 409 and r.json()["code"] == "reversal_too_late"
    r = void(channel_api, bill["code"], "NEVER-SENT")
    assert r.status_code == 404 and r.json()["code"] == "notification_unknown"
    r = void(channel_api, "8" + "0" * 15, "OLD")
    assert r.status_code == 404 and r.json()["code"] == "notification_unknown"
    r = void(channel_api, bill["code"], "OLD", header="t=1,v1=00")
    assert r.status_code == 401 and r.json()["code"] == "signature_invalid"
    r = void(channel_api, bill["code"], "OLD", b'{"reason": 5}')
    assert r.status_code == 400
    assert not BillReversal.objects.exists()
    assert not LedgerEntry.objects.filter(kind="reversal").exists()
    assert Bill.objects.get(code=bill["code"]).status == "paid"


def test_only_the_channel_that_sent_it_can_void_it(
    admin_api: Caller, channel_api: Caller, make_caller: Any, person: dict[str, Any]
) -> None:
    bill = a_code(admin_api, person)
    assert signed_post(channel_api, bill["code"], paying(bill, "MINE")).status_code == 201
    other = make_caller("channel", payment_channel="bank")
    r = void(other, bill["code"], "MINE")
    assert r.status_code == 404 and r.json()["code"] == "notification_unknown"
    r = admin_api.post(f"{bill_url(bill['code'])}payments/MINE/reversal/", {})
    assert r.status_code == 403
    assert not BillReversal.objects.exists()


@pytest.mark.parametrize("language,expected", [("id", "hari"), ("en", "day")])
def test_the_too_late_message_is_in_the_callers_language(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any], language: str, expected: str
) -> None:
    bill = a_code(admin_api, person)
    signed_post(channel_api, bill["code"], paying(bill, "LATE"))
    BillNotification.objects.filter(reference="LATE").update(
        created_at=timezone.now() - timedelta(days=2)
    )
    body = b""
    header = signature_header(body, signing_secret(channel_api.client))
    r = channel_api.post(
        f"{bill_url(bill['code'])}payments/LATE/reversal/",
        body,
        {"X-Signature": header, "Accept-Language": language},
    )
    assert r.status_code == 409 and expected in r.json()["message"]
