"""Bills over the API: payment codes for the apps that serve a worker, and the biller protocol
for payment channels - inquiry, then a signed payment notification that is applied through the
one payment service, or held in suspense, never dropped (docs/api.md "Bills")."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from contributions.bills import code_for, is_valid_code, open_bill
from contributions.models import Bill, BillNotification, Coverage, Payment, SuspenseItem
from enrollment.api.signing import rotate_signing_secret, signature_header, signing_secret
from enrollment.models import ApiClient, Participant
from tests.api.conftest import Caller, next_nik, reg_body
from tests.contributions.test_concurrency import run_together

CODES = "/api/v1/payment-codes/"


def bill_url(code: str) -> str:
    return f"/api/v1/bills/{code}/"


def signed_post(
    caller: Caller,
    code: str,
    body: dict[str, Any],
    *,
    secret: str | None = None,
    at: int | None = None,
) -> Any:
    raw = json.dumps(body, default=str).encode()
    header = signature_header(raw, secret or signing_secret(caller.client), at)
    return caller.post(bill_url(code) + "payments/", raw, {"X-Signature": header})


def a_code(admin_api: Caller, person: dict[str, Any], months: int = 1) -> dict[str, Any]:
    r = admin_api.post(CODES, {"participant": person["id"], "months": months})
    assert r.status_code in (200, 201), r.content
    return r.json()


def paying(bill: dict[str, Any], reference: str = "BANK-1", **kw: Any) -> dict[str, Any]:
    return {"reference": reference, "amount": bill["amount"], "paid_at": timezone.now(), **kw}


def test_a_code_is_issued_once_while_open_priced_by_the_quote(
    admin_api: Caller, person: dict[str, Any]
) -> None:
    r = admin_api.post(CODES, {"participant": person["id"], "months": 3})
    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == {
        "code", "participant", "months", "first_month", "amount", "expires_at", "status", "qr",
        "where_to_pay",
    }  # fmt: skip
    assert body["status"] == "open" and body["months"] == 3 and is_valid_code(body["code"])
    svg = base64.b64decode(body["qr"].removeprefix("data:image/svg+xml;base64,")).decode()
    assert svg.startswith("<?xml") and "<svg" in svg and "<path" in svg
    assert [w["channel"] for w in body["where_to_pay"]] == ["bank", "retail", "ewallet"]
    assert all(w["how"] for w in body["where_to_pay"])
    quote = admin_api.get("/api/v1/dues/", {"kpj": person["kpj_number"], "months": 3}).json()
    assert body["amount"] == quote["amount"] and body["first_month"] == quote["first_month"]
    again = admin_api.post(CODES, {"participant": person["id"], "months": 3})
    assert again.status_code == 200 and again.json()["code"] == body["code"]
    other = admin_api.post(CODES, {"participant": person["id"], "months": 1}).json()
    assert other["code"] != body["code"]


def test_bad_requests_are_clear_errors(
    admin_api: Caller, channel_api: Caller, partner_api: Caller, person: dict[str, Any]
) -> None:
    r = admin_api.post(CODES, {"participant": person["id"], "months": 13})
    assert r.status_code == 400 and r.json()["code"] == "months_out_of_range"
    r = admin_api.post(CODES, {"participant": 10**9, "months": 1})
    assert r.status_code == 404 and r.json()["code"] == "participant_unknown"
    r = partner_api.post(CODES, {"participant": person["id"], "months": 1})  # not its own
    assert r.status_code == 404 and r.json()["code"] == "participant_unknown"
    r = channel_api.post(CODES, {"participant": person["id"], "months": 1})
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    assert not Bill.objects.exists()


def test_an_expired_code_gives_way_to_a_new_one(admin_api: Caller, person: dict[str, Any]) -> None:
    first = a_code(admin_api, person)
    Bill.objects.filter(code=first["code"]).update(expires_at=timezone.now() - timedelta(1))
    second = admin_api.post(CODES, {"participant": person["id"], "months": 1})
    assert second.status_code == 201 and second.json()["code"] != first["code"]
    assert Bill.objects.get(code=first["code"]).status == "expired"


def test_codes_are_16_digits_with_a_check_digit_and_never_repeat(settings: Any) -> None:
    settings.BILL_CODE_KEY = "k" * 40
    codes = [code_for(n) for n in range(5_000)]
    assert len(set(codes)) == len(codes)
    assert all(len(c) == 16 and c.startswith("8") and is_valid_code(c) for c in codes)
    # neighbours in the sequence share nothing a reader could count with
    assert len({c[1:8] for c in codes[:100]}) > 90
    assert not is_valid_code(codes[0][:-1] + str((int(codes[0][-1]) + 1) % 10))


def test_inquiry_shows_a_masked_name_and_the_amount_only(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any]
) -> None:
    bill = a_code(admin_api, person, months=2)
    r = channel_api.get(bill_url(bill["code"]))
    assert r.status_code == 200, r.content
    assert r.json() | {"expires_at": None} == {
        "code": bill["code"], "amount": bill["amount"], "months": 2, "name": "B*** S***",
        "expires_at": None, "status": "open",
    }  # fmt: skip
    for field in ("full_name", "phone", "address", "nik", "kpj_number"):
        assert str(person[field]) not in r.content.decode()
    r = channel_api.get(bill_url("8" + "0" * 15))
    assert r.status_code == 404 and r.json()["code"] == "bill_unknown"
    r = channel_api.get(bill_url("not-a-code"))
    assert r.status_code == 404 and r.json()["code"] == "bill_unknown"
    r = admin_api.get(bill_url(bill["code"]))
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    Bill.objects.filter(code=bill["code"]).update(expires_at=timezone.now())
    r = channel_api.get(bill_url(bill["code"]))
    assert r.status_code == 410 and r.json()["code"] == "bill_expired"


def test_a_signed_notification_pays_the_bill_through_the_payment_service(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any]
) -> None:
    bill = a_code(admin_api, person, months=3)
    r = signed_post(channel_api, bill["code"], paying(bill))
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["status"] == "applied" and body["amount"] == bill["amount"]
    payment = Payment.objects.get(pk=body["payment"])
    reference = f"BANK-1#{channel_api.client.pk}"  # scoped to the client (services)
    assert (payment.channel, payment.reference, payment.months) == ("bank", reference, 3)
    assert payment.entries.filter(kind="payment", amount=bill["amount"]).exists()  # the ledger
    cov = Coverage.objects.get(pk=person["id"])
    assert cov.status == "active" and body["paid_through"] == cov.paid_through.isoformat()
    assert Bill.objects.get(code=bill["code"]).status == "paid"
    r = channel_api.get(bill_url(bill["code"]))
    assert r.status_code == 410 and r.json()["code"] == "bill_paid"


def test_two_banks_may_use_the_same_reference(
    admin_api: Caller, channel_api: Caller, make_caller: Any, person: dict[str, Any]
) -> None:
    other_bank = make_caller("channel", payment_channel="bank")
    second = admin_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()
    mine, theirs = a_code(admin_api, person), a_code(admin_api, second)
    assert signed_post(channel_api, mine["code"], paying(mine, "000001")).status_code == 201
    r = signed_post(other_bank, theirs["code"], paying(theirs, "000001"))
    assert r.status_code == 201, r.content
    assert {p.participant_id for p in Payment.objects.filter(channel="bank")} == {
        person["id"], second["id"],
    }  # fmt: skip


def test_replays_conflicts_and_signatures(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any]
) -> None:
    bill = a_code(admin_api, person)
    body = paying(bill)
    raw = json.dumps(body, default=str).encode()
    url = bill_url(bill["code"]) + "payments/"
    secret = signing_secret(channel_api.client)

    def send(data: bytes, header: str) -> Any:
        return channel_api.post(url, data, {"X-Signature": header})

    now = int(time.time())
    refused = [
        send(raw, ""),  # missing
        send(raw, f"t={now},v1=" + "0" * 64),  # wrong
        send(raw, signature_header(raw, "another-secret", now)),  # another key
        send(raw, signature_header(raw, secret, now - 301)),  # too old
        # from the future: stamped when sent (a stamp taken earlier ages while the requests
        # before it run, and a slow run brought it back within the 300 s)
        send(raw, signature_header(raw, secret, int(time.time()) + 302)),
        send(raw + b" ", signature_header(raw, secret, now)),  # body changed after signing
        send(raw, f"v1={signature_header(raw, secret, now)}"),  # malformed
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert {r.json()["code"] for r in refused} == {"signature_invalid"}
    assert not BillNotification.objects.exists() and not Payment.objects.exists()

    first = send(raw, signature_header(raw, secret, now))
    assert first.status_code == 201, first.content
    replay = send(raw, signature_header(raw, secret, now + 5))
    assert replay.status_code == 200 and replay.json() == first.json()
    changed = json.dumps({**body, "amount": bill["amount"] + 1}, default=str).encode()
    conflict = send(changed, signature_header(changed, secret))
    assert conflict.status_code == 409 and conflict.json()["code"] == "reference_conflict"
    assert Payment.objects.count() == 1 and BillNotification.objects.count() == 1


@pytest.mark.parametrize("case", ["amount_mismatch", "bill_expired", "bill_paid"])
def test_money_that_cannot_be_applied_is_held_in_suspense(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any], case: str
) -> None:
    bill = a_code(admin_api, person)
    amount = bill["amount"]
    if case == "amount_mismatch":
        amount += 500
    elif case == "bill_expired":
        Bill.objects.filter(code=bill["code"]).update(expires_at=timezone.now())
    else:
        assert signed_post(channel_api, bill["code"], paying(bill, "FIRST")).status_code == 201
    body = paying(bill, "LATE-1", amount=amount)
    r = signed_post(channel_api, bill["code"], body)
    assert r.status_code == 202, r.content
    answer = r.json()
    assert answer["status"] == "suspense" and answer["reason"] == case
    item = SuspenseItem.objects.get(pk=answer["suspense"])
    assert (item.amount, item.reference, item.reason, item.channel) == (
        amount, "LATE-1", case, "bank",
    )  # fmt: skip
    assert item.participant_id == person["id"]
    assert Payment.objects.filter(reference="LATE-1").count() == 0
    again = signed_post(channel_api, bill["code"], body)
    assert again.status_code == 202 and again.json() == answer
    assert SuspenseItem.objects.count() == 1


def test_the_suspense_account_is_append_only(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any]
) -> None:
    from django.db import IntegrityError, connection, transaction

    def run(sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, [item.pk])

    bill = a_code(admin_api, person)
    signed_post(channel_api, bill["code"], paying(bill, amount=bill["amount"] + 1))
    item = SuspenseItem.objects.get()
    for change in (
        lambda: SuspenseItem.objects.filter(pk=item.pk).update(amount=1),
        lambda: run("DELETE FROM contributions_suspenseitem WHERE id = %s"),
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            change()
    assert SuspenseItem.objects.get().amount == bill["amount"] + 1


def test_a_paid_at_outside_the_window_is_refused_and_nothing_is_kept(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any]
) -> None:
    bill = a_code(admin_api, person)
    r = signed_post(channel_api, bill["code"], paying(bill, paid_at=timezone.now() + timedelta(1)))
    assert r.status_code == 400 and r.json()["code"] == "paid_at_future"
    assert not BillNotification.objects.exists() and not SuspenseItem.objects.exists()
    r = signed_post(channel_api, "8" + "0" * 15, paying(bill))
    assert r.status_code == 404 and r.json()["code"] == "bill_unknown"


def test_rotation_keeps_the_previous_secret_for_the_overlap_only(
    admin_api: Caller, channel_api: Caller, person: dict[str, Any]
) -> None:
    bill = a_code(admin_api, person)
    old = signing_secret(channel_api.client)
    new = rotate_signing_secret(channel_api.client, overlap=timedelta(hours=1))
    assert new != old
    r = signed_post(channel_api, bill["code"], paying(bill, "OLD-KEY"), secret=old)
    assert r.status_code == 201, r.content
    ApiClient.objects.filter(pk=channel_api.client.pk).update(
        signing_previous_until=timezone.now() - timedelta(seconds=1)
    )
    second = a_code(admin_api, person, months=2)
    r = signed_post(channel_api, second["code"], paying(second, "OLD-AGAIN"), secret=old)
    assert r.status_code == 401
    r = signed_post(channel_api, second["code"], paying(second, "NEW-KEY"), secret=new)
    assert r.status_code == 201, r.content


def test_create_api_client_prints_the_signing_secret_once(refdata: Any) -> None:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "create_api_client",
        "Bank X",
        "--scope",
        "channel",
        "--channel",
        "bank",
        stdout=out,
        stderr=io.StringIO(),
    )
    _token, secret_line = out.getvalue().strip().splitlines()
    client = ApiClient.objects.get(name="Bank X")
    assert secret_line == f"signing secret: {signing_secret(client)}"
    out = io.StringIO()
    call_command(
        "rotate_signing_secret", "Bank X", "--overlap-hours", "2", stdout=out, stderr=io.StringIO()
    )
    client.refresh_from_db()
    assert client.signing_generation == 2
    assert out.getvalue().strip() == f"signing secret: {signing_secret(client)}"


@pytest.mark.django_db(transaction=True)
def test_twenty_identical_notifications_at_once_make_one_payment(tx_refdata: Any) -> None:
    from enrollment.api.clients import create_api_client
    from enrollment.services import register_participant
    from tests.conftest import nik_for, registration_data

    person = register_participant(**registration_data(nik=nik_for(serial=7331)))
    issued = create_api_client(name="bank", scope="channel", payment_channel="bank")
    bill, _ = open_bill(participant=person, months=1)
    raw = json.dumps(
        {"reference": "SAME-REF", "amount": bill.amount, "paid_at": timezone.now()}, default=str
    ).encode()
    header = signature_header(raw, signing_secret(issued.client))

    def notify() -> int:
        r = Client().post(
            bill_url(bill.code) + "payments/", raw, content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {issued.token}", HTTP_X_SIGNATURE=header,
        )  # fmt: skip
        return int(r.status_code)

    codes = run_together(*([notify] * 20))
    assert sorted(codes) == [200] * 19 + [201], codes
    assert Payment.objects.filter(participant=person).count() == 1
    assert BillNotification.objects.count() == 1 and not SuspenseItem.objects.exists()
    assert Participant.objects.filter(pk=person.pk).exists()


def test_errors_are_in_indonesian_by_default_and_english_on_request(channel_api: Caller) -> None:
    unknown = bill_url("8" + "0" * 15)
    assert channel_api.get(unknown).json()["message"] == "Tidak ada tagihan dengan kode ini."
    english = channel_api.get(unknown, **{"Accept-Language": "en"}).json()
    assert english["message"] == "No bill has this code."
    raw = b'{"reference": "R", "amount": 1, "paid_at": "2026-01-01T00:00:00Z"}'
    r = channel_api.post(unknown + "payments/", raw, {"X-Signature": "t=1,v1=00"})
    assert r.json()["message"] == "Header X-Signature tidak ada, salah, atau sudah terlalu lama."
