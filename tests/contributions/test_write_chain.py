"""A single payment's writes sent as one statement (contributions/services.py
`_write_payment_chain`, bpjsportal/core/rowsql.py) and a receipt as one
(contributions/messaging/notifications.py): the same rows as the statement-per-row path they
replace on one server (kept for a Citus cluster and for a payment that uses credit), all or
nothing, and the same choice of channel in SQL as in Python."""

from __future__ import annotations

from datetime import date
from itertools import product
from typing import Any

import pytest
from django.db import connection

from contributions import services
from contributions.errors import PaymentConflict
from contributions.messaging import notifications
from contributions.models import (
    Coverage,
    LedgerEntry,
    OutboxMessage,
    Payment,
    Reminder,
    ReminderPreference,
    ReminderRule,
)
from enrollment.models import UniqueKey
from tests.conftest import nik_for

PAYMENT = ("amount", "months", "period_start", "payer", "payer_type", "channel", "paid_at",
           "collected_by_id", "sponsor_id", "batch_id", "reactivation")  # fmt: skip
ENTRY = ("kind", "amount", "months", "period_start", "reverses_id", "reason", "created_by_id")
COVERAGE = ("status", "paid_through", "active_since", "lapsed_since", "continuous_months",
            "reactivations", "balance", "payer_type", "credit")  # fmt: skip
REMINDER = ("kind", "period", "state", "channel", "recipient", "planned_for", "attempts")


def _written(participant: Any) -> dict[str, Any]:
    payment = Payment.objects.get(participant=participant)
    entry = LedgerEntry.objects.get(payment=payment)
    reminder = Reminder.objects.get(participant=participant, kind="payment_receipt")
    message = OutboxMessage.objects.get(args=[[reminder.pk]])
    return {
        "payment": [getattr(payment, f) for f in PAYMENT],
        "payment_stamped": payment.created_at is not None and payment.sync_txid > 0,
        "entry": [getattr(entry, f) for f in ENTRY],
        "entry_of": (entry.participant_id == participant.pk, entry.created_at is not None),
        "coverage": [getattr(Coverage.objects.get(pk=participant.pk), f) for f in COVERAGE],
        "reminder": [getattr(reminder, f) for f in REMINDER],
        "outbox": (message.task, message.kwargs, message.published_at),
        "claim": UniqueKey.objects.filter(
            kind="payment_ref", value=f"bank\x1f{payment.reference}", participant_id=participant.pk
        ).count(),
    }


@pytest.fixture
def rows_path(monkeypatch: Any) -> Any:
    """Post through the statement-per-row path, as on a cluster."""

    def _use() -> None:
        monkeypatch.setattr(services, "on_cluster", lambda: True)
        monkeypatch.setattr(notifications, "on_cluster", lambda: True)

    return _use


@pytest.mark.django_db
@pytest.mark.clock("2026-06-12T03:00:00Z")
def test_the_chain_writes_what_the_statement_per_row_path_writes(
    make_participant: Any, pay: Any, settings: Any, rows_path: Any
) -> None:
    settings.NOTIFY_ON_PAYMENT = True
    chained, by_rows = (
        make_participant(nik=nik_for(serial=n), consent_reminders=True, phone=f"+6281300000{n}")
        for n in (71, 72)
    )
    pay(chained, months=2, paid_on=date(2026, 6, 12), reference="SAME-A")
    rows_path()
    pay(by_rows, months=2, paid_on=date(2026, 6, 12), reference="SAME-B")
    a, b = _written(chained), _written(by_rows)
    assert a["coverage"][0] == "active" and a["reminder"][3] == "sms"  # a real case
    for key in a:
        if key not in ("payment", "reminder"):
            assert a[key] == b[key], key
    # the same but for the recipient (each their own phone) and the paid_at (its own clock tick)
    assert a["payment"][:6] == b["payment"][:6] and a["payment"][7:] == b["payment"][7:]
    assert a["reminder"][:4] == b["reminder"][:4] and a["reminder"][5:] == b["reminder"][5:]
    assert (a["reminder"][4], b["reminder"][4]) == (chained.phone, by_rows.phone)


@pytest.mark.django_db
def test_a_reference_held_already_writes_nothing_of_the_chain(
    make_participant: Any, pay: Any
) -> None:
    first, second = (
        make_participant(nik=nik_for(serial=81)),
        make_participant(nik=nik_for(serial=82)),
    )
    pay(first, reference="TAKEN-1")
    before = (Payment.objects.count(), LedgerEntry.objects.count(), UniqueKey.objects.count())
    cov = Coverage.objects.get(pk=second.pk)
    with pytest.raises(PaymentConflict):  # another participant's payment under that reference
        pay(second, reference="TAKEN-1")
    after = (Payment.objects.count(), LedgerEntry.objects.count(), UniqueKey.objects.count())
    assert after == before
    assert Coverage.objects.get(pk=second.pk).paid_through == cov.paid_through
    with connection.cursor() as cur:  # and the transaction after it is a clean one
        cur.execute("SELECT 1")


@pytest.mark.django_db
def test_the_receipt_channel_is_chosen_alike_in_python_and_in_sql(make_participant: Any) -> None:
    """`_channel` (Python) and CHANNEL_SQL, over every kind of rule row and preference row."""
    person = make_participant(nik=nik_for(serial=91), consent_reminders=True)
    rules = [None, ("", True), ("email", True), ("whatsapp", False)]  # (channel, enabled)
    prefs = [None, ("", None), ("whatsapp", None), ("email", "opted out")]
    seen = set()
    for rule, pref in product(rules, prefs):
        ReminderRule.objects.filter(kind="payment_receipt").delete()
        ReminderPreference.objects.filter(participant=person).delete()
        row = None
        if rule is not None:
            row = ReminderRule.objects.create(
                kind="payment_receipt", offset_days=0, channel=rule[0], enabled=rule[1]
            )
        if pref is not None:
            ReminderPreference.objects.create(
                participant=person,
                preferred_channel=pref[0],
                opted_out_at=None if pref[1] is None else person.created_at,
            )
        python = notifications._channel(person, row) if (row is None or row.enabled) else None
        sql = notifications._notify_channel(person, "payment_receipt")
        assert sql == python, (rule, pref)
        seen.add(sql)
    assert seen == {None, "sms", "email", "whatsapp"}  # every outcome was reached
