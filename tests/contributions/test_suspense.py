"""Suspense: money held because it could not be applied on its own, settled once by the back
office (apply as a payment for the months it pays exactly, or mark for refund), append-only and
audited (contributions/suspense.py)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contributions.bills import notify_payment, open_bill
from contributions.models import Coverage, LedgerEntry, Payment, SuspenseItem, SuspenseResolution
from contributions.quotes import quote_payment
from contributions.suspense import SuspenseError, months_paid_by, open_items, resolve
from tests.conftest import login_as
from tests.contributions.conftest import assert_ledger_consistent

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(make_participant: Any) -> Any:
    """A suspense item factory: `amount` paid by a bank for a 1-month bill of a new participant
    (the default: the 2-month quote, which a 1-month bill cannot take)."""
    from enrollment.api.clients import create_api_client

    bank = create_api_client(name="bank", scope="channel", payment_channel="bank").client
    counter = iter(range(1, 1000))

    def _held(amount: int | None = None) -> SuspenseItem:
        person = make_participant()
        bill, _ = open_bill(participant=person, months=1)
        if amount is None:
            cov = Coverage.objects.get(pk=person.pk)
            amount = quote_payment(person, cov, months=2, as_of=timezone.localdate()).amount
        reference = f"BANK-{next(counter)}"
        done = notify_payment(
            client=bank,
            code=bill.code,
            reference=reference,
            amount=amount,
            paid_at=timezone.now(),
            body_sha256=hashlib.sha256(reference.encode()).hexdigest(),
        )
        assert not done.applied
        return SuspenseItem.objects.get(pk=done.notification.suspense_id)

    return _held


def client_for(user: Any) -> Client:
    c = Client()
    login_as(c, user, with_password=True)
    return c


def test_apply_posts_the_months_the_amount_pays_through_the_payment_service(
    held: Any, admin_user: Any
) -> None:
    item = held()
    assert months_paid_by(item) == 2
    assert list(open_items()) == [item]
    resolution = resolve(item=item, action="apply", reason="paid two months", user=admin_user)
    payment = Payment.objects.get(pk=resolution.payment_id)
    assert (payment.amount, payment.months, payment.reference, payment.channel) == (
        item.amount, 2, f"{item.reference}#{item.client_id}", "bank",
    )  # fmt: skip
    assert payment.paid_at == item.paid_at  # dated when the money was paid
    assert LedgerEntry.objects.filter(payment=payment, kind="payment").exists()
    assert Coverage.objects.get(pk=item.participant_id).status == "active"
    assert resolution.resolved_by == admin_user and resolution.reason == "paid two months"
    assert not open_items().exists()
    assert_ledger_consistent()


def test_an_amount_of_no_whole_months_is_refused_and_can_be_refunded(
    held: Any, admin_user: Any
) -> None:
    item = held(amount=12_345)
    assert months_paid_by(item) is None
    with pytest.raises(SuspenseError) as refused:
        resolve(item=item, action="apply", reason="try", user=admin_user)
    assert refused.value.code == "amount_not_whole_months"
    assert not SuspenseResolution.objects.exists() and not Payment.objects.exists()
    refund = resolve(item=item, action="refund", reason="payer asked", user=admin_user)
    assert refund.action == "refund" and refund.payment is None
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    "action,reason,code",
    [
        ("apply", "  ", "reason_required"),
        ("apply", "x" * 256, "reason_too_long"),
        ("delete", "why", "action_invalid"),
    ],
)
def test_bad_resolutions_are_refused(held: Any, action: str, reason: str, code: str) -> None:
    item = held()
    with pytest.raises(SuspenseError) as refused:
        resolve(item=item, action=action, reason=reason)
    assert refused.value.code == code
    assert not SuspenseResolution.objects.exists()


def test_an_item_is_settled_once_and_the_resolution_is_append_only(
    held: Any, admin_user: Any
) -> None:
    item = held()
    first = resolve(item=item, action="refund", reason="payer asked", user=admin_user)
    with pytest.raises(SuspenseError) as twice:
        resolve(item=item, action="apply", reason="changed my mind", user=admin_user)
    assert twice.value.code == "suspense_resolved"
    for change in (
        lambda: SuspenseResolution.objects.filter(pk=first.pk).update(reason="edited"),
        lambda: SuspenseResolution.objects.filter(pk=first.pk).delete(),
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            change()
    assert SuspenseResolution.objects.get().reason == "payer asked"


def test_every_step_is_in_the_audit_trail_with_who_did_it(held: Any, admin_user: Any) -> None:
    from bpjsportal.audit.selectors import history_for

    item = held()
    url = reverse("admin:contributions_suspenseitem_changelist")
    client_for(admin_user).post(
        url, {"action": "apply_suspense", "_selected_action": [item.pk], "reason": "two months"}
    )
    resolution = SuspenseResolution.objects.get(suspense=item)
    [event] = history_for(resolution)
    assert event.label == "insert" and admin_user.username in event.actor
    values = {c.field: c.new for c in event.changes}
    assert values.get("action") == "apply" and values.get("reason") == "two months"
    assert [e.label for e in history_for(item)] == ["insert"]
    assert [e.label for e in history_for(Payment.objects.get(pk=resolution.payment_id))] == [
        "insert"
    ]


def test_admins_settle_items_in_the_back_office(held: Any, admin_user: Any, agent: Any) -> None:
    apply_me, refund_me, odd = held(), held(), held(amount=7_777)
    url = reverse("admin:contributions_suspenseitem_changelist")
    client = client_for(admin_user)
    listing = client.get(url)
    assert listing.status_code == 200 and apply_me.reference.encode() in listing.content
    ask = client.post(url, {"action": "apply_suspense", "_selected_action": [apply_me.pk]})
    assert ask.status_code == 200 and b"reason" in ask.content
    done = client.post(
        url,
        {
            "action": "apply_suspense",
            "_selected_action": [apply_me.pk, odd.pk],
            "reason": "two months",
        },
        follow=True,
    )
    assert done.status_code == 200
    page = done.content.decode()
    assert "1 dana suspense diselesaikan" in page and "bulan utuh" in page  # odd is refused
    client.post(
        url,
        {"action": "refund_suspense", "_selected_action": [refund_me.pk], "reason": "refund"},
    )
    actions = dict(SuspenseResolution.objects.values_list("suspense_id", "action"))
    assert actions == {apply_me.pk: "apply", refund_me.pk: "refund"}
    assert SuspenseResolution.objects.get(suspense=apply_me).resolved_by == admin_user
    # an agent has no back office
    assert client_for(agent).get(url).status_code in (302, 403)
