"""Welcome and payment receipt messages: created in the write's transaction with an outbox row,
sent by a worker through the reminder machinery -- exactly once, even when the worker process
running the task is killed with SIGKILL mid-send (acks_late + task_reject_on_worker_lost +
idempotent tasks, settings "faults" block)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from contributions.messaging import outbox, reminders
from contributions.models import OutboxMessage, Reminder, ReminderRule
from tests.conftest import nik_for, start_worker
from tests.contributions.conftest import held_elsewhere
from tests.contributions.test_reminders_worker import stop, wait_for


@pytest.fixture
def notified(make_participant: Any, settings: Any) -> Any:
    settings.NOTIFY_ON_REGISTRATION = settings.NOTIFY_ON_PAYMENT = True
    counter = iter(range(900, 999))

    def _make(**overrides: Any) -> Any:
        n = next(counter)
        overrides.setdefault("consent_reminders", True)
        overrides.setdefault("phone", f"+62813{n:07d}")
        overrides.setdefault("nik", nik_for(serial=n))
        return make_participant(**overrides)

    return _make


@pytest.mark.django_db
def test_registration_queues_a_welcome_and_a_payment_a_receipt(notified: Any, pay: Any) -> None:
    p = notified()
    welcome = Reminder.objects.get(participant=p)
    assert (welcome.kind, welcome.state, welcome.recipient) == ("welcome", "queued", p.phone)
    assert welcome.dispatched_at is not None  # claimed by the outbox: the dispatcher waits
    payment, _created = pay(p, months=2)
    receipt = Reminder.objects.get(participant=p, kind="payment_receipt")
    assert receipt.period == payment.period_start
    assert list(OutboxMessage.objects.values_list("task", "args")) == [
        ("contributions.send_reminder_batch", [[welcome.pk]]),
        ("contributions.send_reminder_batch", [[receipt.pk]]),
    ]
    text = reminders.render_reminder(receipt).text
    assert payment.reference in text and f"{payment.amount:,}".replace(",", ".") in text
    assert p.kpj_number in reminders.render_reminder(welcome).text


@pytest.mark.django_db
def test_the_welcome_names_the_monthly_price_even_after_a_payment(notified: Any, pay: Any) -> None:
    from contributions.quotes import quote_payment

    p = notified()
    welcome = Reminder.objects.get(participant=p, kind="welcome")
    cov = p.coverage
    monthly = quote_payment(p, cov, months=1, as_of=timezone.localdate()).amount
    pay(p, months=1)  # the welcome is sent later: nothing is due by then
    text = reminders.render_reminder(welcome).text
    assert f"Rp {monthly:,}".replace(",", ".") in text and "Rp 0 " not in text


@pytest.mark.django_db
def test_no_message_without_consent_after_opt_out_or_with_the_rule_disabled(
    notified: Any, pay: Any
) -> None:
    notified(consent_reminders=False)
    opted = notified()
    reminders.opt_out(participant=opted, reason="test")
    pay(opted)
    assert not Reminder.objects.filter(kind="payment_receipt").exists()
    ReminderRule.objects.update_or_create(
        kind="welcome", defaults={"offset_days": 0, "enabled": False}
    )
    notified()
    assert Reminder.objects.filter(kind="welcome").count() == 1  # only `opted`'s, before
    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db
def test_a_receipted_payment_gets_no_thank_you_the_next_day(notified: Any, pay: Any) -> None:
    reminders.seed_reminder_rules()
    receipted = notified()
    pay(receipted)
    imported = notified()
    pay(imported, notify=False)  # as a bank file import posts it
    tomorrow = timezone.localdate() + timezone.timedelta(days=1)
    assert reminders.plan_reminders(day=tomorrow).created["payment_thanks"] == 1
    thanks = Reminder.objects.get(kind="payment_thanks")
    assert thanks.participant_id == imported.pk
    # and the planner never plans the write-path kinds itself
    ReminderRule.objects.create(kind="payment_receipt", offset_days=0)
    assert reminders.plan_reminders(day=tomorrow).created["payment_receipt"] == 0


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


@pytest.mark.django_db
def test_an_outbox_rows_task_id_is_never_an_earlier_rows() -> None:
    """A restored or re-created database (or another database on the same Redis, as every test
    run's) numbers its rows from 1 again while the result store keeps the old tasks' results for
    a day; Celery 5.7 takes a SUCCESS stored under a task id for "already ran" when that task's
    pool process is lost, and acknowledges instead of requeueing: ids must not repeat."""
    first = outbox.enqueue("contributions.noop")
    earlier = outbox.task_id(first)
    assert outbox.task_id(OutboxMessage.objects.get(pk=first.pk)) == earlier  # stable per row
    OutboxMessage.objects.all().delete()
    again = OutboxMessage.objects.create(pk=first.pk, task="contributions.noop")  # same number
    assert outbox.task_id(again) != earlier


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_worker_process_killed_mid_send_is_requeued_and_sends_each_message_once(
    tx_refdata: Any, notified: Any, gateway: Any, settings: Any
) -> None:
    # sendable at any hour here too (the worker gets the same), whatever the local time of the run
    settings.REMINDER_SEND_FROM_HOUR, settings.REMINDER_SEND_UNTIL_HOUR = 0, 24
    people = [notified() for _ in range(5)]
    assert outbox.relay().published == 5
    gateway.state.delay = 1.0  # each send takes a second: time to kill the process inside one
    worker, _node = start_worker(
        pool="prefork", REMINDER_SEND_FROM_HOUR="0", REMINDER_SEND_UNTIL_HOUR="24"
    )
    try:
        held: set[int] = set()

        def mid_send() -> bool:
            # read once per poll: a second read can fall between two sends and find none
            held.clear()
            held.update(held_elsewhere(Reminder.objects.filter(state="queued")))
            return len(gateway.state.messages) >= 1 and bool(held)

        wait_for(mid_send, timeout=60)
        (killed,) = held  # its task holds the row lock while it waits on the gateway
        time.sleep(0.2)
        (child,) = _children(worker.pid)
        os.kill(child, signal.SIGKILL)
        # the pool replaces the process; the broker hands the unacknowledged task out again
        wait_for(lambda: Reminder.objects.filter(state="sent").count() == 5, timeout=90)
        assert child not in _children(worker.pid)
    finally:
        stop(worker)
    rows = dict(Reminder.objects.values_list("pk", "gateway_message_id"))
    assert {r.participant_id for r in Reminder.objects.all()} == {p.pk for p in people}
    accepted = {m["reference"]: m["id"] for m in gateway.state.messages}
    assert len(gateway.state.messages) == 5
    assert accepted == {f"bpu-rem-{pk}": mid for pk, mid in rows.items()}
    assert f"bpu-rem-{killed}" in accepted
    # if the killed send reached the gateway, its rerun used the same reference: no second SMS
    assert gateway.state.stats()["duplicates"] <= 1
    # nobody waited for the dispatcher's lease: the requeue did it
    assert all(
        r.dispatched_at
        and r.sent_at
        and r.sent_at - r.dispatched_at < timezone.timedelta(minutes=5)
        for r in Reminder.objects.all()
    )
