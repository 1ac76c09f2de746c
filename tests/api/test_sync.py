"""Incremental sync: pages, tokens, and no row skipped or repeated under concurrent writers."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from bpjsportal.core.api.sync import GROUP_SHIFT, sync_horizon
from enrollment.models import Participant
from enrollment.services import register_participant, update_participant
from enrollment.sharding import on_cluster
from tests.api.conftest import next_nik, reg_body
from tests.conftest import registration_data

URL = "/api/v1/sync/participants/"


def drain(api: Any, url: str, token: str | None, page_size: int = 2) -> tuple[list[Any], str]:
    rows: list[Any] = []
    while True:
        params: dict[str, Any] = {"page_size": page_size}
        if token:
            params["since"] = token
        r = api.get(url, params)
        assert r.status_code == 200, r.content
        body = r.json()
        rows += body["results"]
        token = body["next_token"]
        if not body["has_more"]:
            return rows, str(token)


# Each request commits on its own, as in production (a test-wide transaction would give every
# write the same transaction id).
@pytest.mark.django_db(transaction=True)
def test_pages_cover_everything_once_then_only_changes(admin_api: Any) -> None:
    ids = [
        admin_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()["id"]
        for _ in range(5)
    ]
    rows, token = drain(admin_api, URL, None)
    if on_cluster():  # each node's rows in its own order (bpjsportal/core/api/sync.py)
        assert sorted(r["id"] for r in rows) == ids
    else:
        assert [r["id"] for r in rows] == ids  # creation order, each once
    assert drain(admin_api, URL, token)[0] == []
    admin_api.patch(f"/api/v1/participants/{ids[2]}/", {"address": "Jl. Baru"})
    changed, token = drain(admin_api, URL, token)
    assert [(r["id"], r["address"]) for r in changed] == [(ids[2], "Jl. Baru")]
    assert drain(admin_api, URL, token)[0] == []


@pytest.mark.django_db(transaction=True)
def test_a_payment_brings_the_participant_back_with_its_status(
    admin_api: Any, channel_api: Any
) -> None:
    p = admin_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()
    _rows, token = drain(admin_api, URL, None)
    amount = admin_api.get("/api/v1/quotes/", {"income": 1_000_000}).json()["total"]
    r = channel_api.post(
        "/api/v1/payments/",
        {
            "kpj_number": p["kpj_number"],
            "amount": amount,
            "months": 1,
            "reference": "S-1",
            "paid_at": timezone.now().isoformat(),
            "payer": "participant",
        },
    )
    assert r.status_code == 201
    changed, _ = drain(admin_api, URL, token)
    assert [(c["id"], c["status"]) for c in changed] == [(p["id"], "active")]
    payments, _ = drain(admin_api, "/api/v1/sync/payments/", None)
    assert [x["reference"] for x in payments] == ["S-1"]
    assert [x["reference"] for x in drain(channel_api, "/api/v1/sync/payments/", None)[0]] == [
        "S-1"
    ]


def test_sync_respects_scope(partner_api: Any, admin_api: Any) -> None:
    mine = partner_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()
    admin_api.post("/api/v1/participants/", reg_body(nik=next_nik()))
    rows, _ = drain(partner_api, URL, None)
    assert [r["id"] for r in rows] == [mine["id"]] and "*" in rows[0]["nik"]


def test_bad_tokens_are_400(admin_api: Any) -> None:
    assert admin_api.get(URL, {"since": "nonsense"}).json()["code"] == "invalid_token"
    _rows, payments_token = drain(admin_api, "/api/v1/sync/payments/", None)
    r = admin_api.get(URL, {"since": payments_token})
    assert r.status_code == 400 and r.json()["code"] == "invalid_token"
    assert admin_api.get(URL, {"page_size": "5000"}).json()["code"] == "page_size_invalid"


# --- concurrency (real connections, one per thread) ------------------------------------------
_lock = threading.Lock()


def _node(pk: int) -> int:
    """The node whose transaction last wrote the participant (0 on a single server)."""
    return Participant.objects.get(pk=pk).sync_txid >> GROUP_SHIFT


def _register_in_thread(**overrides: Any) -> Participant:
    with _lock:
        nik = next_nik()
    return register_participant(**registration_data(nik=nik, **overrides))


@pytest.mark.django_db(transaction=True)
def test_a_transaction_committing_late_is_not_skipped(tx_refdata: Any, make_caller: Any) -> None:
    """A registers first (lower transaction id) but commits last. A cursor over commit-time-
    agnostic positions would hand out B, move past A, and lose A for ever."""
    api = make_caller("admin")
    a_wrote, release = threading.Event(), threading.Event()
    created: dict[str, int] = {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                created["a"] = _register_in_thread().pk
                a_wrote.set()
                release.wait(10)
        finally:
            connection.close()

    t = threading.Thread(target=slow_writer)
    t.start()
    assert a_wrote.wait(10)
    created["b"] = _register_in_thread().pk  # commits at once
    first, token = drain(api, URL, None)
    release.set()
    t.join(10)
    rest, token = drain(api, URL, token)
    delivered = [r["id"] for r in first + rest]
    assert sorted(delivered) == sorted(created.values())  # A is not skipped; each once
    if _node(created["a"]) == _node(created["b"]):  # always on one server
        assert first == []  # B waited behind the still-open A
        assert delivered == [created["a"], created["b"]]
    # on a cluster A holds back the nodes it wrote on (its participant's, its unique keys'):
    # B arrives at once when its node is not among them, or after A


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_nothing_skipped_or_repeated(tx_refdata: Any, make_caller: Any) -> None:
    api = make_caller("admin")
    writers, per_writer = 4, 12
    done = threading.Event()
    errors: list[BaseException] = []
    registered: list[int] = []

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(per_writer):
                with transaction.atomic():
                    if rnd.random() < 0.3:  # two in one transaction (on a cluster: often two
                        registered.append(_register_in_thread().pk)  # nodes, two phases)
                    p = _register_in_thread()
                    registered.append(p.pk)
                    time.sleep(rnd.random() * 0.02)  # commits interleave out of order
                if rnd.random() < 0.5:
                    with transaction.atomic():
                        update_participant(
                            participant=Participant.objects.select_for_update().get(pk=p.pk),
                            address=f"Jl. Baru {rnd.randint(1, 10**6)}",
                        )
                        time.sleep(rnd.random() * 0.02)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    delivered: list[dict[str, Any]] = []
    token: str | None = None
    while any(t.is_alive() for t in threads):
        rows, token = drain(api, URL, token, page_size=3)
        delivered += rows
    for t in threads:
        t.join()
    done.set()
    rows, token = drain(api, URL, token, page_size=3)
    delivered += rows
    assert not errors, errors

    final = {p.pk: p for p in Participant.objects.all()}
    assert set(final) == set(registered) and len(registered) >= writers * per_writer
    if on_cluster():  # the writes landed on both workers' shards, each numbering its own
        assert {p.sync_txid >> GROUP_SHIFT for p in final.values()} == {1, 2}
    # Nothing skipped: every row arrived, and the last version a client holds is the final one.
    last: dict[int, dict[str, Any]] = {}
    for row in delivered:
        last[row["id"]] = row
    assert set(last) == set(final)
    for pk, row in last.items():
        assert row["address"] == final[pk].address
    # Nothing repeated: the same version of a row never arrives twice.
    versions = [(r["id"], r["updated_at"], r["address"]) for r in delivered]
    assert len(versions) == len(set(versions))


def test_the_horizon_never_passes_another_running_transaction(db: Any) -> None:
    """Another transaction took an id before this one and is still running: the horizon stays
    at or below it, though this transaction sees its own rows (the snapshot's xmax counts only
    finished transactions, so a running one may sit between xmax and this one's id)."""
    import psycopg

    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        dbname=settings["NAME"],
        password=settings["PASSWORD"],
    )
    try:
        (theirs,) = other.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
            (mine,) = cursor.fetchone()
        assert theirs < mine
        assert sync_horizon() <= theirs
        other.rollback()
        assert sync_horizon() > mine  # then this transaction's own rows are readable
    finally:
        other.close()
