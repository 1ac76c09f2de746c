"""Autodebit (contributions/autodebit.py): mandates set up by the participant or by an agent
with the participant's code, cancelled from the page, by an agent or by the channel's signed
callback; charges planned once per (mandate, month) in the days before the due date, charged
through the fake channel's charge API with one idempotency key, declines retried with backoff
and then told to the participant and the agent. The clock is pinned: 12 December 2026, 10:00
WIB (three days before the due day, the 15th)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from django.urls import reverse

from contributions import autodebit
from contributions.autodebit_client import ChannelUnavailable
from contributions.models import (
    AutodebitCharge,
    AutodebitMandate,
    Coverage,
    OutboxMessage,
    Payment,
    Reminder,
)
from enrollment.api.clients import create_api_client
from enrollment.api.signing import signature_header, signing_secret
from enrollment.models import ApiClient

pytestmark = pytest.mark.clock("2026-12-12T03:00:00Z")
DEC = date(2026, 12, 1)
DAY = date(2026, 12, 12)


@pytest.fixture
def mandate(make_participant: Any, wallet: Any) -> Any:
    def _make(account: str = "081234567890", **overrides: Any) -> AutodebitMandate:
        person = make_participant(start_month=DEC, **overrides)
        return autodebit.set_up(
            participant=person, client=wallet[0], account=account, by="participant"
        )

    return _make


@pytest.mark.django_db  # the due dates read the holiday calendar
def test_the_charging_window_is_the_days_before_the_due_date(settings: Any) -> None:
    settings.AUTODEBIT_DAYS_BEFORE = 3
    assert autodebit.period_for(date(2026, 12, 11)) is None
    assert autodebit.period_for(date(2026, 12, 12)) == DEC
    assert autodebit.period_for(date(2026, 12, 15)) == DEC  # the due date itself
    assert autodebit.period_for(date(2026, 12, 16)) is None
    settings.AUTODEBIT_DAYS_BEFORE = 20
    assert autodebit.period_for(date(2026, 12, 26)) == date(2027, 1, 1)
    assert autodebit.charge_key(12, DEC) == "AD12-202612"
    # August 2026 is due on the 18th (15-16 a weekend, 17 Proklamasi): the window follows it
    settings.AUTODEBIT_DAYS_BEFORE = 3
    aug = date(2026, 8, 1)
    assert autodebit.period_for(date(2026, 8, 14)) is None
    assert autodebit.period_for(date(2026, 8, 15)) == aug
    assert autodebit.period_for(date(2026, 8, 18)) == aug
    assert autodebit.period_for(date(2026, 8, 19)) is None


@pytest.mark.django_db
def test_set_up_checks_the_channel_and_account_and_allows_one_mandate(
    make_participant: Any, wallet: Any
) -> None:
    person = make_participant(start_month=DEC)
    with pytest.raises(autodebit.AutodebitError) as bad:
        autodebit.set_up(participant=person, client=wallet[0], account="12ab", by="participant")
    assert bad.value.code == "account_invalid"
    bank = create_api_client(name="No autodebit", scope="channel", payment_channel="bank").client
    with pytest.raises(autodebit.AutodebitError) as bad:
        autodebit.set_up(participant=person, client=bank, account="0812345678", by="participant")
    assert bad.value.code == "channel_invalid"
    m = autodebit.set_up(
        participant=person, client=wallet[0], account="+62 812-3456-7890", by="participant"
    )
    assert m.account == "6281234567890"
    with pytest.raises(autodebit.AutodebitError) as bad:
        autodebit.set_up(participant=person, client=wallet[0], account="0812345678", by="agent")
    assert bad.value.code == "mandate_exists"
    assert AutodebitMandate.objects.count() == 1


@pytest.mark.django_db
def test_plan_creates_one_charge_per_mandate_and_month_however_often_it_runs(
    mandate: Any, make_participant: Any, pay: Any
) -> None:
    first, second = mandate(), mandate()
    paid = mandate()
    pay(paid.participant, months=1, paid_on=DAY)  # December paid already: nothing to charge
    one = autodebit.plan(day=DAY)
    again = autodebit.plan(day=DAY)
    assert (one.period, one.created, one.due) == (DEC, 2, 2)
    assert (again.created, again.due) == (0, 2)  # the same charges queued again, none new
    rows = list(AutodebitCharge.objects.order_by("mandate_id").values_list("mandate_id", "key"))
    assert rows == [(first.pk, f"AD{first.pk}-202612"), (second.pk, f"AD{second.pk}-202612")]
    queued = OutboxMessage.objects.filter(task="contributions.autodebit_charge_batch")
    assert [m.args for m in queued] == [[[r.pk for r in AutodebitCharge.objects.order_by("id")],
                                         "2026-12-12"]] * 2  # fmt: skip
    assert autodebit.plan(day=date(2026, 12, 20)).created == 0  # outside the window


@pytest.mark.django_db
def test_a_charge_is_debited_once_and_recorded_as_the_participants_payment(
    mandate: Any, wallet: Any
) -> None:
    _client, server, _token = wallet
    m = mandate()
    autodebit.plan(day=DAY)
    charge = AutodebitCharge.objects.get()
    assert autodebit.charge_one(charge.pk, today=DAY) == "paid"
    assert autodebit.charge_one(charge.pk, today=DAY) == "skipped"  # done: never again
    charge.refresh_from_db()
    payment = Payment.objects.get()
    assert charge.payment == payment and charge.state == "paid"
    assert (payment.reference, payment.channel, payment.amount) == (
        f"AD{m.pk}-202612",
        "ewallet",
        charge.amount,
    )
    assert Coverage.objects.get(pk=m.participant_id).status == "active"
    assert list(server.channel.debits) == [charge.key]
    assert server.channel.charge_requests == [
        {"key": charge.key, "account": "6281234567890", "amount": charge.amount}
    ]
    assert charge.channel_reference == server.channel.debits[charge.key]["reference"]


@pytest.mark.django_db
def test_a_debit_whose_answer_was_lost_is_found_again_by_its_key(mandate: Any, wallet: Any) -> None:
    """The worker died after the channel debited: the rerun sends the same key and amount,
    the channel answers with its first debit, and one payment is recorded."""
    _client, server, _token = wallet
    mandate()
    autodebit.plan(day=DAY)
    charge = AutodebitCharge.objects.get()
    server.channel.down = True
    with pytest.raises(ChannelUnavailable):
        autodebit.charge_one(charge.pk, today=DAY)
    charge.refresh_from_db()
    assert charge.state == "pending" and charge.amount  # the request is fixed and kept
    # the lost request had reached the channel after all
    status, _first = server.channel.charge(
        {"key": charge.key, "account": "6281234567890", "amount": charge.amount}
    )
    assert status == 201
    server.channel.down = False
    assert autodebit.charge_one(charge.pk, today=DAY) == "paid"
    assert len(server.channel.debits) == 1 and Payment.objects.count() == 1


@pytest.mark.django_db
def test_declines_are_retried_with_backoff_then_participant_and_agent_are_told(
    mandate: Any, wallet: Any, settings: Any, agent: Any
) -> None:
    settings.AUTODEBIT_MAX_ATTEMPTS, settings.AUTODEBIT_RETRY_DAYS = 3, 1
    settings.NOTIFY_ON_REGISTRATION = False
    _client, server, _token = wallet
    m = mandate(consent_reminders=True, registered_by=agent.staff)
    server.channel.fail = m.account
    autodebit.plan(day=DAY)
    charge = AutodebitCharge.objects.get()
    assert autodebit.charge_one(charge.pk, today=DAY) == "retry"
    charge.refresh_from_db()
    assert (charge.attempts, charge.next_attempt_on, charge.amount) == (1, date(2026, 12, 13), None)
    assert autodebit.charge_one(charge.pk, today=DAY) == "not_yet"
    assert autodebit.plan(day=DAY).due == 0  # not due again before the 13th
    assert autodebit.plan(day=date(2026, 12, 13)).due == 1
    assert autodebit.charge_one(charge.pk, today=date(2026, 12, 13)) == "retry"
    charge.refresh_from_db()
    assert charge.next_attempt_on == date(2026, 12, 15)  # 1, then 2 days
    assert not Reminder.objects.filter(kind="autodebit_failed").exists()
    assert autodebit.charge_one(charge.pk, today=date(2026, 12, 15)) == "failed"
    charge.refresh_from_db()
    assert (charge.state, charge.attempts, charge.last_error) == (
        "failed",
        3,
        "insufficient_funds",
    )
    told = Reminder.objects.get(kind="autodebit_failed", participant=m.participant)
    assert told.period == DEC
    assert OutboxMessage.objects.filter(
        task="contributions.autodebit_tell_agent", args=[charge.pk]
    ).exists()
    assert server.channel.debits == {} and Payment.objects.count() == 0
    assert autodebit.agent_of(charge) == agent.staff


@pytest.mark.django_db
def test_the_agent_sms_names_the_participant_and_goes_once(
    mandate: Any, wallet: Any, settings: Any, agent: Any, gateway: Any
) -> None:
    settings.AUTODEBIT_MAX_ATTEMPTS = 1
    type(agent.staff).objects.filter(pk=agent.staff.pk).update(phone="+6281100000001")
    m = mandate(registered_by=agent.staff)
    wallet[1].channel.fail = "all"
    autodebit.plan(day=DAY)
    charge = AutodebitCharge.objects.get()
    assert autodebit.charge_one(charge.pk, today=DAY) == "failed"
    assert autodebit.tell_agent(charge.pk) == "sent"
    assert autodebit.tell_agent(charge.pk) == "sent"  # a retried task: the gateway de-duplicates
    [sms] = [x for x in gateway.state.messages if x["to"] == "+6281100000001"]
    assert m.participant.kpj_number in sms["text"] and "insufficient_funds" in sms["text"]


@pytest.mark.django_db
def test_a_charge_is_not_made_when_the_month_was_paid_or_the_mandate_cancelled(
    mandate: Any, wallet: Any, pay: Any
) -> None:
    paid, cancelled = mandate(), mandate()
    autodebit.plan(day=DAY)
    pay(paid.participant, months=1, paid_on=DAY)  # paid at a shop meanwhile
    by_mandate = {c.mandate_id: c for c in AutodebitCharge.objects.all()}
    assert autodebit.charge_one(by_mandate[paid.pk].pk, today=DAY) == "not_needed"
    assert autodebit.cancel(cancelled, by="participant", reason="own page")
    assert not autodebit.cancel(cancelled, by="participant")  # once
    assert AutodebitCharge.objects.get(mandate=cancelled).state == "cancelled"
    assert autodebit.charge_one(by_mandate[cancelled.pk].pk, today=DAY) == "skipped"
    assert wallet[1].channel.charge_requests == []


@pytest.mark.django_db
def test_arrears_are_charged_first_up_to_the_due_month(make_participant: Any, wallet: Any) -> None:
    from contributions.quotes import quote_payment

    person = make_participant(start_month=date(2026, 11, 1))  # November unpaid, in grace
    autodebit.set_up(participant=person, client=wallet[0], account="0812345678", by="agent")
    autodebit.plan(day=DAY)
    charge = AutodebitCharge.objects.get()
    assert autodebit.charge_one(charge.pk, today=DAY) == "paid"
    charge.refresh_from_db()
    cov = Coverage.objects.get(pk=person.pk)
    assert charge.months == 2 and cov.paid_through == DEC
    expected = quote_payment(
        person, Coverage(start_month=date(2026, 11, 1)), months=2, as_of=DAY
    ).amount
    assert charge.amount == expected


# --- the channel's cancellation callback ------------------------------------------------------
def _cancel(client: Any, token: str, pk: int, body: dict[str, Any], secret: str) -> Any:
    raw = json.dumps(body).encode()
    return client.post(
        reverse("api:autodebit-mandate-cancellation", args=[pk]),
        data=raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
        HTTP_X_SIGNATURE=signature_header(raw, secret),
    )


@pytest.mark.django_db
def test_the_channel_cancels_its_own_mandate_with_a_signed_callback(
    client: Any, mandate: Any, wallet: Any
) -> None:
    channel_client, _server, token = wallet
    m = mandate()
    autodebit.plan(day=DAY)
    secret = signing_secret(channel_client)
    bad = _cancel(client, token, m.pk, {"reason": "x"}, "0" * 64)
    assert bad.status_code == 401 and bad.json()["code"] == "signature_invalid"
    m.refresh_from_db()
    assert m.status == "active"
    other = create_api_client(name="Other", scope="channel", payment_channel="bank")
    unknown = _cancel(client, other.token, m.pk, {}, signing_secret(other.client))
    assert unknown.status_code == 404 and unknown.json()["code"] == "mandate_unknown"
    done = _cancel(client, token, m.pk, {"reason": "closed in the app"}, secret)
    assert done.status_code == 200, done.content
    assert done.json()["status"] == "cancelled" and done.json()["cancelled_by"] == "channel"
    again = _cancel(client, token, m.pk, {"reason": "closed in the app"}, secret)
    assert again.status_code == 200 and again.json() == done.json()
    m.refresh_from_db()
    assert (m.status, m.cancel_reason) == ("cancelled", "closed in the app")
    assert AutodebitCharge.objects.get().state == "cancelled"


# --- the participant's page and the agent's panel ---------------------------------------------
def _log_in(client: Any, person: Any) -> None:
    session = client.session
    session["self_service_participant"] = person.pk
    session["self_service_seen"] = int(__import__("time").time())
    session.save()


@pytest.mark.django_db
def test_the_participant_turns_autodebit_on_and_off_on_their_page(
    client: Any, make_participant: Any, wallet: Any
) -> None:
    person = make_participant(start_month=DEC)
    _log_in(client, person)
    page = client.get(reverse("contributions:me"))
    assert b'data-testid="autodebit-off"' in page.content and b"Dompet Demo" in page.content
    url = reverse("contributions:me_autodebit")
    bad = client.post(url, {"action": "on", "channel": wallet[0].pk, "account": "12"})
    assert bad.status_code == 400 and b"8-20" in bad.content
    assert not AutodebitMandate.objects.exists()
    ok = client.post(url, {"action": "on", "channel": wallet[0].pk, "account": "081234567890"})
    assert ok.status_code == 302
    m = AutodebitMandate.objects.get(participant=person)
    assert (m.status, m.set_up_by) == ("active", "participant")
    page = client.get(reverse("contributions:me"))
    assert b'data-testid="autodebit-on"' in page.content and b"*********7890" in page.content
    client.post(url, {"action": "off"})
    m.refresh_from_db()
    assert (m.status, m.cancelled_by) == ("cancelled", "participant")


@pytest.mark.django_db
def test_the_page_cannot_touch_another_participants_mandate(
    client: Any, make_participant: Any, mandate: Any
) -> None:
    theirs = mandate()
    me = make_participant(start_month=DEC)
    _log_in(client, me)
    client.post(reverse("contributions:me_autodebit"), {"action": "off"})
    theirs.refresh_from_db()
    assert theirs.status == "active"
    assert b"7890" not in client.get(reverse("contributions:me")).content


@pytest.mark.django_db
def test_an_agent_needs_the_participants_code_to_turn_autodebit_on(
    client: Any, make_participant: Any, wallet: Any, agent: Any, settings: Any
) -> None:
    from contributions import self_service

    person = make_participant(start_month=DEC, registered_by=agent.staff)
    client.force_login(agent)
    url = reverse("contributions:autodebit", args=[person.pk])
    form = {"action": "on", "channel": wallet[0].pk, "account": "081234567890"}
    refused = client.post(url, {**form, "code": "123456"})  # no code was sent
    assert refused.status_code == 302 and not AutodebitMandate.objects.exists()
    client.post(url, {"action": "send_code"})
    code_id = client.session[f"autodebit_code_{person.pk}"]
    # the test plays the participant reading the SMS: a code of known value for that row
    known = self_service.issue_code(person)
    assert known is not None
    session = client.session
    session[f"autodebit_code_{person.pk}"] = known.code_id
    session.save()
    assert known.code_id != code_id  # the earlier code stopped working
    wrong = "000000" if known.code != "000000" else "111111"
    client.post(url, {**form, "code": wrong})
    assert not AutodebitMandate.objects.exists()
    client.post(url, {**form, "code": known.code})
    m = AutodebitMandate.objects.get(participant=person)
    assert (m.set_up_by, m.agent) == ("agent", agent.staff)
    panel = client.get(reverse("enrollment:participant", args=[person.pk]))
    assert b'data-testid="autodebit-on"' in panel.content
    client.post(url, {"action": "off"})
    m.refresh_from_db()
    assert (m.status, m.cancelled_by) == ("cancelled", "agent")


@pytest.mark.django_db
def test_the_next_charge_day_follows_the_first_unpaid_month(settings: Any) -> None:
    settings.AUTODEBIT_DAYS_BEFORE = 3
    assert autodebit.next_charge_on(date(2026, 12, 4), None) == date(2026, 12, 12)
    assert autodebit.next_charge_on(date(2026, 12, 13), None) == date(2026, 12, 13)  # open now
    assert autodebit.next_charge_on(date(2026, 12, 16), None) == date(2027, 1, 12)
    assert autodebit.next_charge_on(date(2026, 12, 13), DEC) == date(2027, 1, 12)  # Dec paid
    assert autodebit.next_charge_on(date(2026, 12, 4), date(2027, 2, 1)) == date(2027, 3, 12)


@pytest.mark.django_db
def test_bulk_posting_follows_the_rules_of_a_single_payment(
    make_participant: Any, consistent: Any
) -> None:
    """services.post_payments_bulk, the writer of autodebit debits: the quote, the date
    window, a replay and a conflicting reuse of a reference, item by item."""
    from django.utils import timezone

    from contributions.quotes import quote_payment
    from contributions.services import BulkPayment, post_payments_bulk

    a, b, c, d = (make_participant(start_month=DEC) for _ in range(4))
    price = quote_payment(a, Coverage.objects.get(pk=a.pk), months=1, as_of=DAY).amount
    now = timezone.now()

    def item(p: Any, **kw: Any) -> BulkPayment:
        values = {"amount": price, "months": 1, "channel": "ewallet", "reference": f"R{p.pk}"}
        return BulkPayment(participant=p, **{**values, "paid_at": now, **kw})

    first = post_payments_bulk([item(a), item(b, amount=price + 1), item(c, paid_at=now.replace(
        year=now.year + 1))])  # fmt: skip
    assert isinstance(first[0], Payment) and first[0].reference == f"R{a.pk}"
    assert [getattr(r, "code", None) for r in first[1:]] == ["amount_mismatch", "paid_at_future"]
    assert Payment.objects.count() == 1
    assert Coverage.objects.get(pk=a.pk).paid_through == DEC
    assert Coverage.objects.get(pk=b.pk).paid_through is None
    again = post_payments_bulk([item(a), item(d, reference=f"R{a.pk}")])
    assert again[0] == first[0]  # a replay: the same payment
    assert getattr(again[1], "code", None) == "reference_conflict"
    assert Payment.objects.count() == 1
    consistent()


@pytest.mark.django_db
def test_a_channel_client_gets_its_autodebit_url_from_the_command(refdata: Any) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command(
        "create_api_client", "Wallet", "--scope", "channel", "--channel", "ewallet",
        "--autodebit-url", "https://wallet.example/api", stdout=out, stderr=StringIO(),
    )  # fmt: skip
    client = ApiClient.objects.get(name="Wallet")
    assert client.autodebit_url == "https://wallet.example/api"
    assert list(autodebit.channels()) == [client]
    with pytest.raises(CommandError, match="channel client"):
        call_command(
            "create_api_client", "Admin app", "--scope", "admin",
            "--autodebit-url", "https://x.example", stdout=out, stderr=StringIO(),
        )  # fmt: skip
    assert not ApiClient.objects.filter(name="Admin app").exists()  # nothing half-written
