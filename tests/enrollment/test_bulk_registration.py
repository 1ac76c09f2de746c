"""register_participants_bulk gives, row for row, what register_participant gives called one row
at a time in the same order: the same rows (and coverage rows) or the same errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contributions.models import Coverage
from enrollment.errors import DuplicateNik, RegistrationError
from enrollment.kpj import is_valid_kpj, unpermute
from enrollment.models import Occupation, Participant, Region, nik_q
from enrollment.services import register_participant, register_participants_bulk
from tests.conftest import nik_for, registration_data

pytestmark = pytest.mark.usefixtures("refdata")

PRE_EXISTING = nik_for(serial=99)

# Each variant: a change to the base row that breaks one rule (or none).
VARIANTS: dict[str, Callable[[], dict[str, Any]]] = {
    "valid": lambda: {},
    "valid_objects": lambda: {
        "village": Region.objects.get(code="32.73.05.1001"),
        "occupation": Occupation.objects.get(code="petani"),
    },
    "phone": lambda: {"phone": "123"},
    "email": lambda: {"email": "not-an-email"},
    "village_unknown": lambda: {"village": "32.73.05.9999"},
    "village_not_village": lambda: {"village": "32.73"},
    "village_too_long": lambda: {"village": "32.73.05.1001.1"},
    "occupation": lambda: {"occupation": "astronaut"},
    "income_level": lambda: {"declared_income": 1_234_567},
    "income_type": lambda: {"declared_income": True},
    "nik_format": lambda: {"nik": "3273-0517-0590-01"},
    "nik_prefix": lambda: {"nik": nik_for(prefix="327399")},
    "birth_date": lambda: {"birth_date": date(1990, 5, 18)},
    "sex": lambda: {"sex": "F"},
    "name": lambda: {"full_name": "B0b 123"},
    "consent": lambda: {"consent_data": False},
    "channel": lambda: {"channel": "carrier-pigeon"},
    "address": lambda: {"address": "   "},
    "many": lambda: {"phone": "1", "address": "", "occupation": "x", "consent_data": False},
    "pre_existing": lambda: {"nik": PRE_EXISTING},
    "language": lambda: {"language": "fr", "jht": True, "consent_reminders": True},
}


def build_rows(picks: list[tuple[str, int]]) -> list[dict[str, Any]]:
    rows = []
    for variant, serial in picks:
        row = registration_data(
            nik=nik_for(serial=serial), phone=f"08123456{serial:04d}", full_name="Siti Aminah"
        )
        row.update(VARIANTS[variant]())
        rows.append(row)
    return rows


def snapshot(outcome: Participant | RegistrationError) -> Any:
    if isinstance(outcome, RegistrationError):
        return (
            type(outcome).__name__,
            [(e.field, e.code, str(e.message)) for e in outcome.errors],
        )
    row = Participant.objects.filter(pk=outcome.pk).values().get()
    for volatile in ("id", "kpj_number", "created_at", "updated_at", "sync_txid", "nik_encrypted"):
        row.pop(volatile)
    row["nik_digest"] = bytes(row["nik_digest"])
    cov = Coverage.objects.filter(participant_id=outcome.pk).values("status", "start_month").get()
    assert is_valid_kpj(outcome.kpj_number)
    return ("created", row, Participant.objects.get(pk=outcome.pk).nik, cov)


def one_by_one(rows: list[dict[str, Any]]) -> list[Participant | RegistrationError]:
    out: list[Participant | RegistrationError] = []
    for row in rows:
        try:
            out.append(register_participant(**row))
        except RegistrationError as exc:
            out.append(exc)
    return out


def in_savepoint(fn: Callable[[], Any]) -> Any:
    sid = transaction.savepoint()
    try:
        return fn()
    finally:
        transaction.savepoint_rollback(sid)


def both_paths(rows: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    single = in_savepoint(
        lambda: ([snapshot(o) for o in one_by_one(rows)], Participant.objects.count())
    )
    bulk = in_savepoint(
        lambda: (
            [snapshot(o) for o in register_participants_bulk(rows)],
            Participant.objects.count(),
        )
    )
    return single, bulk


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    picks=st.lists(
        st.tuples(st.sampled_from(sorted(VARIANTS)), st.integers(min_value=1, max_value=4)),
        min_size=1,
        max_size=12,
    )
)
def test_bulk_and_single_paths_agree_on_any_mixed_batch(picks: list[tuple[str, int]]) -> None:
    if not Participant.objects.filter(nik_q(PRE_EXISTING)).exists():
        register_participant(**registration_data(nik=PRE_EXISTING, phone="081234560099"))
    single, bulk = both_paths(build_rows(picks))
    assert bulk == single


def test_a_fixed_mixed_batch_agrees_and_covers_every_kind_of_outcome() -> None:
    register_participant(**registration_data(nik=PRE_EXISTING, phone="081234560099"))
    picks = [
        ("valid", 1),
        ("phone", 2),
        ("valid", 2),  # the NIK of a failed row: registers
        ("valid", 1),  # a repeat of a registered NIK: duplicate
        ("pre_existing", 3),
        ("many", 3),
        ("valid_objects", 3),
        ("language", 4),
    ]
    rows = build_rows(picks)
    single, bulk = both_paths(rows)
    assert bulk == single
    kinds = [o[0] for o in bulk[0]]
    assert kinds == [
        "created",
        "RegistrationError",
        "created",
        "DuplicateNik",
        "DuplicateNik",
        "RegistrationError",
        "created",
        "created",
    ]
    assert bulk[1] == 1 + 4


def test_bulk_reads_reference_data_once_and_inserts_in_one_statement() -> None:
    rows = [
        registration_data(nik=nik_for(serial=s), phone=f"08123456{s:04d}") for s in range(1, 201)
    ]
    from contributions.rates import rate_book

    rate_book()  # the rate tables are cached per process (read once, not per row)
    with CaptureQueriesContext(connection) as ctx:
        outcomes = register_participants_bulk(rows)
    assert all(isinstance(o, Participant) for o in outcomes)
    assert Participant.objects.count() == 200 and Coverage.objects.count() == 200
    sql = [q["sql"] for q in ctx.captured_queries]
    inserts = [q for q in sql if q.startswith("INSERT INTO")]
    # the 200 rows' unique keys claimed in one statement (enrollment/unique_keys.py), the
    # participants, their coverage rows
    assert len(inserts) == 3, inserts
    assert "enrollment_uniquekey" in inserts[0] and "enrollment_participant" in inserts[1]
    # savepoint, 4 reference reads (the holiday calendar among them: the new coverage rows'
    # status), KPJ numbers, the 200 ids, 3 inserts, release
    assert len(sql) <= 11, sql
    kpjs = [o.kpj_number for o in outcomes if isinstance(o, Participant)]
    order = [unpermute(int(k[:10])) for k in kpjs]  # the sequence values, in row order
    assert order == sorted(order) and len(set(kpjs)) == 200 and all(map(is_valid_kpj, kpjs))
    assert {o.nik for o in outcomes if isinstance(o, Participant)} == {r["nik"] for r in rows}


def test_bulk_duplicate_error_names_the_branch_like_the_single_path(agent: Any) -> None:
    register_participant(**registration_data(registered_by=agent.staff))
    (outcome,) = register_participants_bulk([registration_data()])
    assert isinstance(outcome, DuplicateNik)
    assert "Bandung" in str(outcome.errors[0].message)


def test_rows_go_in_in_digest_order_and_kpj_numbers_in_row_order() -> None:
    """Two requests inserting the same new NIKs take the unique index entries in one order (the
    digests'), so one waits for the other instead of deadlocking; KPJ numbers still follow the
    rows (their sequence values, which the permutation hides, ascend in row order). Ids come from
    a sequence in insertion order, which shows the insertion order."""
    rows = [
        registration_data(nik=nik_for(serial=s), phone=f"08123456{s:04d}") for s in range(1, 41)
    ]
    created = [o for o in register_participants_bulk(rows) if isinstance(o, Participant)]
    assert len(created) == 40
    by_id = sorted(created, key=lambda p: p.pk)
    digests = [bytes(p.nik_digest) for p in by_id]
    assert digests == sorted(digests)
    order = [unpermute(int(p.kpj_number[:10])) for p in created]
    assert order == sorted(order)
    assert [p.pk for p in created] != [p.pk for p in by_id]  # row order is not digest order
