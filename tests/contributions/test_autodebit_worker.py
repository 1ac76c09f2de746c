"""Autodebit exactly once per mandate and month with real parts: a Celery worker (prefork, one
child) charging through the fake channel's HTTP charge API, the beat's planning task sent
twice (a duplicated beat), and the child process SIGKILLed while it waits on the channel.
Afterwards every charge is paid, the channel debited each key once, and the ledger has one
payment per charge."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import date
from typing import Any

import pytest

from contributions import autodebit
from contributions.messaging import outbox
from contributions.models import AutodebitCharge, Coverage, Payment
from contributions.tasks import plan_autodebit
from tests.conftest import start_worker
from tests.contributions.conftest import held_elsewhere
from tests.contributions.test_notifications import _children
from tests.contributions.test_reminders_worker import stop, wait_for

pytestmark = [
    pytest.mark.celery,
    pytest.mark.clock("2026-12-12T03:00:00Z"),
    pytest.mark.django_db(transaction=True),
]
DAY = date(2026, 12, 12)
MANDATES = 6


def _relay_until(condition: Any, timeout: float = 90) -> None:
    """Publish outbox rows (the beat's relay does this every few seconds) until `condition`."""

    def step() -> bool:
        outbox.relay()
        return bool(condition())

    wait_for(step, timeout=timeout)


def test_a_killed_worker_and_a_duplicated_beat_charge_each_mandate_once(
    tx_refdata: Any, make_participant: Any, wallet: Any, settings: Any
) -> None:
    client, server, _token = wallet
    settings.NOTIFY_ON_REGISTRATION = settings.NOTIFY_ON_PAYMENT = False
    for n in range(MANDATES):
        person = make_participant(start_month=date(2026, 12, 1), phone=f"+6281377700{n:03d}")
        autodebit.set_up(
            participant=person, client=client, account=f"08137770{n:04d}", by="participant"
        )
    server.channel.delay = 1.0  # each charge takes a second: time to kill the child inside one
    worker, _node = start_worker(
        pool="prefork",
        AUTODEBIT_BATCH="2",
        NOTIFY_ON_REGISTRATION="0",
        NOTIFY_ON_PAYMENT="0",
    )
    try:
        # the beat fires twice (two schedulers, or a restart at the wrong moment)
        plan_autodebit.delay(DAY.isoformat())
        plan_autodebit.delay(DAY.isoformat())
        held: set[int] = set()

        def mid_charge() -> bool:
            held.clear()
            held.update(held_elsewhere(AutodebitCharge.objects.filter(state="pending")))
            return bool(held) and len(server.channel.charge_requests) >= 1

        _relay_until(mid_charge, timeout=60)
        killed = next(iter(held))
        time.sleep(0.2)
        (child,) = _children(worker.pid)
        os.kill(child, signal.SIGKILL)
        _relay_until(
            lambda: AutodebitCharge.objects.filter(state="paid").count() == MANDATES,
            timeout=120,
        )
        assert child not in _children(worker.pid)
    finally:
        stop(worker)
    charges = list(AutodebitCharge.objects.all())
    assert len(charges) == MANDATES  # the second plan added no charge
    assert {c.state for c in charges} == {"paid"}
    assert killed in {c.pk for c in charges}
    # the channel debited each key once, whatever was asked twice
    assert sorted(server.channel.debits) == sorted(c.key for c in charges)
    asked = Counter(r["key"] for r in server.channel.charge_requests)
    assert set(asked) == {c.key for c in charges} and max(asked.values()) <= 3
    # the killed child's request had reached the channel: its rerun asked again, same key
    assert sum(asked.values()) > MANDATES
    payments = list(Payment.objects.order_by("reference"))
    assert [p.reference for p in payments] == sorted(c.key for c in charges)
    assert {c.payment_id for c in charges} == {p.pk for p in payments}
    assert set(Coverage.objects.values_list("status", flat=True)) == {"active"}
