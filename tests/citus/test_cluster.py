"""The cluster itself (run with BPU_TEST_CITUS=1, see tests/conftest.py): the layout that
distribute_tables made, the settings every session gets, and that a second run changes nothing."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from tests.conftest import CITUS

pytestmark = pytest.mark.skipif(not CITUS, reason="cluster tests: BPU_TEST_CITUS=1 (make test)")


def _rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


@pytest.mark.django_db
def test_every_table_sharded_by_participant_is_colocated_with_the_participants() -> None:
    tables = dict(_rows("SELECT table_name::text, citus_table_type FROM citus_tables"))
    for name in (
        "enrollment_participant",
        "contributions_payment",
        "contributions_ledgerentry",
        "contributions_coverage",
        "contributions_reminder",
        "audit_paymentevent",
    ):
        assert tables[name] == "distributed", name
    for name in ("enrollment_region", "auth_user", "contributions_rateschedule"):
        assert tables[name] == "reference", name
    assert tables["contributions_commissionline"] == "local"
    # the lookup of values unique across participants is sharded by the value
    assert tables["enrollment_uniquekey"] == "distributed"
    colocations = {
        c
        for (c,) in _rows(
            "SELECT DISTINCT colocation_id FROM citus_tables WHERE citus_table_type = 'distributed'"
            " AND table_name <> 'enrollment_uniquekey'::regclass"
        )
    }
    assert len(colocations) == 1
    workers = _rows("SELECT count(DISTINCT nodename || nodeport) FROM citus_shards")
    assert workers[0][0] >= 2


@pytest.mark.django_db
def test_sessions_get_the_cluster_settings() -> None:
    assert _rows("SHOW citus.multi_shard_modify_mode") == [("sequential",)]
    assert _rows("SHOW citus.enable_repartition_joins") == [("on",)]


@pytest.mark.django_db(transaction=True)
def test_distribute_tables_twice_changes_nothing() -> None:
    out = io.StringIO()
    call_command("distribute_tables", stdout=out)
    assert "distributed: 0 tables" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_generated_year_passes_check_ledger_and_keeps_nik_and_references_unique(
    tx_refdata: None,
) -> None:
    """The demo's generator - workers by COPY, a year of payments, lapses and reactivations,
    commission statements, follow-up outcomes - on the cluster; check_ledger then finds every
    coverage row equal to its ledger, and every NIK and payment reference holds one claim
    (enrollment/unique_keys.py). (The rollup steps are left out: the reporting tests build the
    rollups on the cluster, launcher.CLUSTER_TESTS.)"""
    from enrollment.demo import DemoContext, demo_steps

    ctx = DemoContext(today=timezone.localdate(), workers=400, months=12)
    done = []
    for step in demo_steps():
        if step.name in ("rollups", "targets"):
            continue
        step.run(ctx)
        done.append(step.name)
    assert done == ["logins", "workers", "payments", "commission statements", "follow-up outcomes"]
    check = io.StringIO()
    call_command("check_ledger", stdout=check)  # a mismatch raises CommandError
    assert "ledger and coverage agree" in check.getvalue()
    (participants, niks, payments, refs) = _rows(
        "SELECT (SELECT count(*) FROM enrollment_participant),"
        " (SELECT count(*) FROM enrollment_uniquekey WHERE kind = 'nik'),"
        " (SELECT count(*) FROM contributions_payment),"
        " (SELECT count(*) FROM enrollment_uniquekey WHERE kind = 'payment_ref')"
    )[0]
    assert participants >= 400 and niks == participants
    assert payments > 0 and refs == payments
    # the ledger is spread over both workers
    spread = _rows(
        "SELECT count(DISTINCT nodeport) FROM citus_shards"
        " WHERE table_name = 'contributions_ledgerentry'::regclass AND shard_size > 8192"
    )
    assert spread[0][0] >= 2


@pytest.mark.clock("2026-12-10T05:00:00Z")  # noon WIB: the payment is of the registration's day
@pytest.mark.django_db
def test_writes_on_the_workers_are_audited_and_a_payment_replay_meets_its_claim(
    register: Any,
) -> None:
    """A payment's rows are written by triggers on the worker holding the participant: the
    payment and its ledger entry each get their audit event there (colocated), and the same
    channel reference again is a replay, whichever shard asks (the claim in
    enrollment_uniquekey)."""
    from contributions.errors import PaymentConflict
    from contributions.models import Coverage, Payment
    from contributions.quotes import quote_payment
    from contributions.services import record_payment
    from tests.conftest import nik_for

    people = [register(nik=nik_for(serial=700 + i)) for i in range(6)]
    shards = [
        r[0]
        for r in _rows(
            "SELECT get_shard_id_for_distribution_column('enrollment_participant', x)"
            " FROM unnest(%s::bigint[]) x",
            [[p.pk for p in people]],
        )
    ]
    spread = {
        r[0] for r in _rows("SELECT nodeport FROM citus_shards WHERE shardid = ANY(%s)", [shards])
    }
    assert len(spread) >= 2  # six participants land on both workers
    now = timezone.now()
    payments = []
    for p in people:
        due = quote_payment(p, Coverage.objects.get(pk=p.pk), months=1, as_of=timezone.localdate())
        payment, created = record_payment(
            participant=p, amount=due.amount, months=1, payer="participant", channel="bank",
            reference=f"CLUSTER-{p.pk}", paid_at=now,
        )  # fmt: skip
        assert created
        payments.append(payment)
    ids = [p.pk for p in payments]
    events = _rows(
        "SELECT count(*) FROM audit_paymentevent"
        " WHERE pgh_label = 'insert' AND pgh_obj_id = ANY(%s)",
        [ids],
    )
    assert events[0][0] == len(ids)
    ledger_events = _rows(
        "SELECT count(*) FROM audit_ledgerentryevent"
        " WHERE pgh_label = 'insert' AND payment_id = ANY(%s)",
        [ids],
    )
    assert ledger_events[0][0] == len(ids)
    # the same reference again, for another participant (maybe on another shard): refused as a
    # conflict, never a second payment
    other = people[0] if payments[-1].participant_id != people[0].pk else people[1]
    before = Payment.objects.count()
    with pytest.raises(PaymentConflict):
        record_payment(
            participant=other, amount=payments[-1].amount, months=1, payer="participant",
            channel="bank", reference=payments[-1].reference, paid_at=now,
        )  # fmt: skip
    assert Payment.objects.count() == before
