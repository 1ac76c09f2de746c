"""The append-only ledger: database refusals, reversals, and the check_ledger proof."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from contributions.errors import ReversalError
from contributions.models import Coverage, LedgerEntry
from contributions.services import reverse_entry, reverse_payment
from tests.contributions.conftest import assert_ledger_consistent

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(make_participant: Any, pay: Any) -> Any:
    p = make_participant()
    payment, _ = pay(p, months=1)
    return p, payment


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE contributions_ledgerentry SET amount = amount + 1",
        "UPDATE contributions_ledgerentry SET reason = 'edited'",
        "DELETE FROM contributions_ledgerentry",
    ],
)
def test_raw_sql_update_or_delete_fails(paid: Any, sql: str) -> None:
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert LedgerEntry.objects.count() == 1
    assert_ledger_consistent()


def test_raw_sql_truncate_fails_outside_the_test_flush(paid: Any) -> None:
    with (
        pytest.raises(IntegrityError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # flush the deferred FK checks
        cursor.execute("SET LOCAL bpu.ledger_truncate = 'deny'")
        cursor.execute("TRUNCATE contributions_ledgerentry CASCADE")
    assert LedgerEntry.objects.count() == 1


def test_orm_update_and_delete_fail(paid: Any) -> None:
    entry = LedgerEntry.objects.get()
    entry.amount = 1
    with pytest.raises(IntegrityError), transaction.atomic():
        entry.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.all().delete()


def test_reversal_cancels_the_payment_and_recomputes_coverage(paid: Any, admin_user: Any) -> None:
    p, payment = paid
    reversal = reverse_payment(
        payment=payment, reason="bank recalled the transfer", user=admin_user
    )
    assert reversal.amount == -payment.amount and reversal.created_by == admin_user
    c = Coverage.objects.get(pk=p.pk)
    assert c.paid_through is None and c.balance == 0 and c.status == "grace"
    assert_ledger_consistent()


def test_reversal_of_a_reversal_is_refused(paid: Any, admin_user: Any) -> None:
    _, payment = paid
    reversal = reverse_payment(payment=payment, reason="wrong participant", user=admin_user)
    with pytest.raises(ReversalError) as err:
        reverse_entry(entry=reversal, reason="undo", user=admin_user)
    assert err.value.code == "reversal_of_reversal"
    assert_ledger_consistent()


def test_double_reversal_is_refused(paid: Any, admin_user: Any) -> None:
    _, payment = paid
    reverse_payment(payment=payment, reason="first", user=admin_user)
    with pytest.raises(ReversalError) as err:
        reverse_payment(payment=payment, reason="second", user=admin_user)
    assert err.value.code == "already_reversed"
    assert LedgerEntry.objects.filter(kind="reversal").count() == 1
    assert_ledger_consistent()


def test_reversal_needs_a_reason(paid: Any, admin_user: Any) -> None:
    with pytest.raises(ReversalError) as err:
        reverse_payment(payment=paid[1], reason="   ", user=admin_user)
    assert err.value.code == "reason_required"


def test_only_the_latest_payment_can_be_reversed(paid: Any, pay: Any, admin_user: Any) -> None:
    p, first = paid
    pay(p, months=2)
    with pytest.raises(ReversalError) as err:
        reverse_payment(payment=first, reason="x", user=admin_user)
    assert err.value.code == "not_latest_payment"
    assert_ledger_consistent()


def test_database_refuses_a_reversal_of_a_reversal_inserted_directly(
    paid: Any, admin_user: Any
) -> None:
    p, payment = paid
    reversal = reverse_payment(payment=payment, reason="x", user=admin_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            participant=p, kind="reversal", amount=-1, reverses=reversal, reason="sneaky"
        )


def test_database_refuses_a_second_reversal_inserted_directly(paid: Any, admin_user: Any) -> None:
    p, payment = paid
    reverse_payment(payment=payment, reason="x", user=admin_user)
    entry = LedgerEntry.objects.get(kind="payment")
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(
            participant=p, kind="reversal", amount=-entry.amount, reverses=entry, reason="again"
        )


def test_check_ledger_passes_then_fails_on_a_tampered_coverage_row(paid: Any) -> None:
    p, _ = paid
    call_command("check_ledger")
    Coverage.objects.filter(pk=p.pk).update(balance=1)
    with pytest.raises(CommandError, match="mismatch"):
        call_command("check_ledger")


def test_check_ledger_detects_a_stale_status(paid: Any) -> None:
    p, _ = paid
    Coverage.objects.filter(pk=p.pk).update(status="lapsed")
    with pytest.raises(CommandError):
        call_command("check_ledger")
    call_command("check_ledger", "--skip-status")
