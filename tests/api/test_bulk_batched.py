"""The batched bulk upsert answers every row exactly as processing the rows one at a time, in
order, through the single-row services does (the algorithm the endpoint had before batching)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from enrollment.api.bulk import bulk_upsert, upsert_row
from enrollment.models import ApiClient, Participant, Partner, niks_q
from tests.api.conftest import next_nik, reg_body


def one_at_a_time(client: ApiClient, rows: list[Any]) -> list[dict[str, Any]]:
    niks = [r["nik"] for r in rows if isinstance(r, dict) and isinstance(r.get("nik"), str)]
    existing = {p.nik: p for p in Participant.objects.filter(niks_q(niks)).order_by("id")}
    return [upsert_row(client, n, raw, existing) for n, raw in enumerate(rows)]


def comparable(results: list[dict[str, Any]]) -> list[Any]:
    return [(r["row"], r["nik"], r["result"], r["errors"], r["id"] is None) for r in results]


def in_savepoint(fn: Any) -> Any:
    sid = transaction.savepoint()
    try:
        out = fn()
        state = sorted(
            Participant.objects.values_list("full_name", "phone", "address", "declared_income")
        )
        return out, state
    finally:
        transaction.savepoint_rollback(sid)


@pytest.mark.usefixtures("refdata")
def test_batched_bulk_equals_row_by_row(partner_api: Any, admin_api: Any) -> None:
    mine = reg_body(nik=next_nik())
    theirs = reg_body(nik=next_nik())
    assert partner_api.post("/api/v1/participants/", mine).status_code == 201
    assert admin_api.post("/api/v1/participants/", theirs).status_code == 201
    fresh = [reg_body(nik=next_nik()) for _ in range(4)]
    rows: list[Any] = [
        fresh[0],
        {**fresh[1], "phone": "123"},  # error, then the same NIK valid: created
        fresh[1],
        fresh[0],  # repeat of a row created above: unchanged
        {**fresh[0], "address": "Jl. Lain 2"},  # ... then updated
        {**fresh[0], "full_name": "Orang Lain"},  # ... identity change: error
        mine,  # existing, in scope: unchanged
        {**mine, "occupation": "pedagang", "address": "Jl. Pasar 1"},  # updated
        theirs,  # existing, out of the partner's scope: duplicate_nik
        "not an object",
        {**fresh[2], "shoe": 1},
        {**fresh[2], "nik": 3273051705900001},
        {**fresh[2], "declared_income": 1_234_567},
        {**fresh[3], "channel": "self"},  # field_not_allowed for a partner
        fresh[2],
        {**fresh[3], "village": "32.73"},
        fresh[3],
    ]
    client = partner_api.client
    expected, state_single = in_savepoint(lambda: one_at_a_time(client, rows))
    got, state_bulk = in_savepoint(lambda: bulk_upsert(client, rows)["results"])
    assert comparable(got) == comparable(expected)
    assert state_bulk == state_single
    assert [r["result"] for r in got] == [
        "created",
        "error",
        "created",
        "unchanged",
        "updated",
        "error",
        "unchanged",
        "updated",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "created",
        "error",
        "created",
    ]


@pytest.mark.usefixtures("refdata")
def test_admin_rows_with_partner_codes_agree(admin_api: Any) -> None:
    Partner.objects.create(code="CF9", name="ComboFit 9", kind="bundle")
    rows = [
        {**reg_body(nik=next_nik()), "partner": "CF9"},
        {**reg_body(nik=next_nik()), "partner": "NOPE"},
        {**reg_body(nik=next_nik()), "partner": "CF9", "channel": "partner"},
    ]
    client = admin_api.client
    expected, _ = in_savepoint(lambda: one_at_a_time(client, rows))
    got, _ = in_savepoint(lambda: bulk_upsert(client, rows)["results"])
    assert comparable(got) == comparable(expected)
    assert [r["result"] for r in got] == ["created", "error", "created"]


@pytest.mark.usefixtures("refdata")
def test_agent_rows_agree_and_carry_the_agent_and_branch(agent_api: Any) -> None:
    rows = [reg_body(nik=next_nik()) for _ in range(3)] + [{**reg_body(), "sex": "X"}]
    client = agent_api.client
    expected, _ = in_savepoint(lambda: one_at_a_time(client, rows))
    got, _ = in_savepoint(lambda: bulk_upsert(client, rows)["results"])
    assert comparable(got) == comparable(expected)
    with transaction.atomic():
        bulk_upsert(client, rows)
    people = Participant.objects.all()
    assert len(people) == 3
    assert {(p.registered_by_id, p.branch_id, p.channel) for p in people} == {
        (client.agent.pk, client.agent.branch_id, "agent")
    }
