"""The demo loop end to end, on a 360-px phone, with real parts: a payment reminder with its
link goes out through the fake SMS gateway -> the participant opens the link and gets a bill
code -> a teller types the code into the fake payment channel and pays (a signed notification
over HTTP) -> ledger, status active -> the receipt SMS, sent by a real Celery worker, is in the
fake gateway's outbox."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from contributions.fake_channel import Channel, FakeChannelServer
from contributions.messaging import outbox, reminders
from contributions.models import BillNotification, Coverage, LedgerEntry, Payment, Reminder
from enrollment.api.clients import create_api_client
from enrollment.api.signing import signing_secret
from tests.contributions.test_reminders_worker import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.celery, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def channel(live_server: Any) -> Iterator[FakeChannelServer]:
    issued = create_api_client(name="Bank Demo", scope="channel", payment_channel="bank")
    api = f"{live_server.url}/api/v1"
    server = FakeChannelServer(Channel(api, issued.token, signing_secret(issued.client)))
    server.start_in_thread()
    yield server
    server.shutdown()
    server.server_close()


def test_reminder_link_bill_channel_payment_active_receipt(
    tx_refdata: Any,
    make_participant: Any,
    gateway: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    live_server: Any,
    channel: FakeChannelServer,
    page: Any,
) -> None:
    settings.PORTAL_URL = live_server.url
    settings.NOTIFY_ON_PAYMENT = True
    settings.REMINDER_SEND_FROM_HOUR, settings.REMINDER_SEND_UNTIL_HOUR = 0, 24
    monkeypatch.setenv("REMINDER_SEND_FROM_HOUR", "0")
    monkeypatch.setenv("REMINDER_SEND_UNTIL_HOUR", "24")
    person = make_participant(
        full_name="Wayan Sudarsana", consent_reminders=True, phone="+6281399990001"
    )
    today = timezone.localdate()
    reminder = Reminder.objects.create(
        participant=person, kind="due_soon", period=today.replace(day=1), planned_for=today,
        send_after=timezone.now(), channel="sms", recipient=person.phone,
    )  # fmt: skip
    # 1. the reminder goes out through the gateway with its link
    assert reminders.deliver_batch([reminder.pk]).sent == 1
    [sms] = [m for m in gateway.state.messages if m["to"] == person.phone]
    link = re.search(r"(http://\S+/b/\S+/)", sms["text"])
    assert link, sms["text"]

    # 2. the participant opens it on the phone: masked name, amount, a bill code
    page.goto(link.group(1))
    assert page.inner_text("[data-testid=pay-name]") == "W*** S***"
    code = page.get_attribute("[data-testid=pay-code]", "data-code")
    amount_text = page.inner_text("[data-testid=pay-amount]")
    Path("var").mkdir(exist_ok=True)
    page.screenshot(path="var/e2e-pay-link.png", full_page=True)

    # 3. a teller types the code into the channel's page and pays
    page.goto(channel.url)
    page.fill("[data-testid=channel-code]", str(code))
    page.click("[data-testid=channel-inquire]")
    assert page.inner_text("[data-testid=channel-amount]") == amount_text
    page.click("[data-testid=channel-pay]")
    answer = page.inner_text("[data-testid=channel-paid]")
    page.screenshot(path="var/e2e-channel-paid.png", full_page=True)
    assert answer.startswith("201:") and '"applied"' in answer

    # 4. the ledger and the status
    payment = Payment.objects.get(participant=person)
    assert LedgerEntry.objects.filter(payment=payment, kind="payment").exists()
    assert Coverage.objects.get(pk=person.pk).status == "active"
    [record] = json.loads(json.dumps(channel.channel.record))  # the channel's own record
    assert record["status"] == 201 and record["answer"]["payment"] == payment.pk
    assert BillNotification.objects.get().reference == record["reference"]

    # 5. the receipt SMS, sent by a real worker, lands in the gateway's outbox page
    assert outbox.relay().published >= 1
    from tests.conftest import start_worker

    worker, _node = start_worker(REMINDER_SEND_FROM_HOUR="0", REMINDER_SEND_UNTIL_HOUR="24")
    try:
        sent = gateway.state.messages
        wait_for(lambda: any(record["reference"] in m["text"] for m in list(sent)))
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    page.goto(gateway.url + "/")
    outbox_text = page.inner_text("body")
    assert record["reference"] in outbox_text and person.phone in outbox_text
    page.screenshot(path="var/e2e-receipt-sms.png", full_page=True)

    # 6. the link again: nothing is due now
    page.goto(link.group(1))
    page.wait_for_selector("[data-testid=pay-nothing-due]")


def test_the_demo_channel_credentials_are_written_once(
    tx_refdata: Any, tmp_path: Path, settings: Any
) -> None:
    settings.DEBUG = True
    path = tmp_path / "demo-channel.json"
    call_command("demo_channel_client", str(path))
    first = json.loads(path.read_text())
    call_command("demo_channel_client", str(path))
    assert json.loads(path.read_text()) == first
    from enrollment.models import ApiClient

    client = ApiClient.objects.get(pk=first["client_id"])
    assert client.scope == "channel" and signing_secret(client) == first["secret"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_participant_logs_in_with_the_sms_code_and_gets_a_bill_on_a_phone(
    tx_refdata: Any, make_participant: Any, gateway: Any, pay: Any, page: Any, live_server: Any
) -> None:
    """The /me/ pages in a real browser (its CSRF and cookies; the code comes by SMS from a
    real worker through the gateway)."""
    from tests.conftest import start_worker

    person = make_participant(full_name="Made Wirawan", phone="+6281399990002")
    pay(person)
    page.goto(f"{live_server.url}/me/")
    page.fill("#me-number", person.kpj_number)
    page.fill("#me-birth", person.birth_date.isoformat())
    worker, _node = start_worker()
    try:
        page.click("[data-testid=me-send-code]")
        page.wait_for_selector("[data-testid=me-code]")
        sent = gateway.state.messages
        wait_for(lambda: any(m["to"] == person.phone for m in list(sent)))
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    [sms] = [m for m in gateway.state.messages if m["to"] == person.phone]
    code = re.search(r"\b(\d{6})\b", sms["text"])
    assert code, sms["text"]
    page.fill("#me-code-input", code.group(1))
    page.click("[data-testid=me-login-submit]")
    page.wait_for_selector("[data-testid=me-home]")
    assert page.get_attribute("[data-testid=me-status]", "data-status") == "active"
    page.screenshot(path="var/e2e-me-home.png", full_page=True)
    page.click("[data-testid=me-pay-3]")
    page.wait_for_selector("[data-testid=me-bill]")
    bill_code = page.get_attribute("[data-testid=pay-code]", "data-code")
    assert bill_code and len(bill_code) == 16
    page.screenshot(path="var/e2e-me-bill.png", full_page=True)


@pytest.mark.clock("2026-12-12T03:00:00Z")  # three days before the due day: a charging day
def test_a_participant_turns_autodebit_on_and_the_channel_pays_before_the_due_date(
    tx_refdata: Any,
    make_participant: Any,
    gateway: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    live_server: Any,
    page: Any,
    wallet: Any,
) -> None:
    """The autodebit loop on a 360-px phone: log in with the SMS code -> turn autodebit on
    with the e-wallet -> the day's planning charges it through the fake channel's charge API
    (a real worker) -> the page shows the month paid and protection active -> the receipt SMS."""
    from datetime import date

    from contributions import autodebit
    from contributions.models import AutodebitCharge
    from tests.conftest import start_worker

    settings.NOTIFY_ON_PAYMENT = True
    monkeypatch.setenv("REMINDER_SEND_FROM_HOUR", "0")
    monkeypatch.setenv("REMINDER_SEND_UNTIL_HOUR", "24")
    wallet_client, server, _token = wallet
    person = make_participant(
        start_month=date(2026, 12, 1), full_name="Ketut Arsana", phone="+6281399990003",
        consent_reminders=True,
    )  # fmt: skip
    worker, _node = start_worker(REMINDER_SEND_FROM_HOUR="0", REMINDER_SEND_UNTIL_HOUR="24")
    try:
        page.goto(f"{live_server.url}/me/")
        page.fill("#me-number", person.kpj_number)
        page.fill("#me-birth", person.birth_date.isoformat())
        page.click("[data-testid=me-send-code]")
        page.wait_for_selector("[data-testid=me-code]")
        sent = gateway.state.messages
        wait_for(lambda: any("login" in m["text"] or "masuk" in m["text"] for m in list(sent)))
        [sms] = [m for m in gateway.state.messages if m["to"] == person.phone]
        code = re.search(r"\b(\d{6})\b", sms["text"])
        assert code, sms["text"]
        page.fill("#me-code-input", code.group(1))
        page.click("[data-testid=me-login-submit]")
        page.wait_for_selector("[data-testid=autodebit-off]")
        page.select_option("[data-testid=autodebit-channel]", str(wallet_client.pk))
        page.fill("[data-testid=autodebit-account]", "0813 9999 0003")
        page.click("[data-testid=me-autodebit-on]")
        page.wait_for_selector("[data-testid=autodebit-on]")
        page.screenshot(path="var/e2e-me-autodebit-on.png", full_page=True)

        # the beat's planning of the day, then the worker charges through the channel
        assert autodebit.plan(day=date(2026, 12, 12)).due == 1
        wait_for(
            lambda: (
                outbox.relay() is not None and AutodebitCharge.objects.filter(state="paid").exists()
            ),
            timeout=60,
        )
        receipt_ref = f"AD{AutodebitCharge.objects.get().mandate_id}-202612"
        wait_for(lambda: outbox.relay() is not None and any(
            receipt_ref in m["text"] for m in list(gateway.state.messages)))  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert list(server.channel.debits) == [receipt_ref]
    page.reload()
    assert page.get_attribute("[data-testid=autodebit-last]", "data-state") == "paid"
    assert page.get_attribute("[data-testid=me-status]", "data-status") == "active"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.screenshot(path="var/e2e-me-autodebit-paid.png", full_page=True)
