"""Incremental sync: every row created or changed since a token, in pages, none skipped or
repeated, even while other transactions write.

Why not `updated_at` or a sequence: both are assigned *before* commit, so a transaction that
started early can commit after a later one and its rows would land behind a client's cursor.

The choice: every row carries `sync_txid`, the id of the transaction that last wrote it (a
BEFORE INSERT/UPDATE trigger, `pg_current_xact_id()`). Pages are ordered by (sync_txid, id) and
only include rows below a *horizon*: the oldest transaction id still running in this database
(from `pg_current_snapshot()`, `pg_stat_activity` and `pg_prepared_xacts`), or the next
transaction id when none is. A transaction with an id below the horizon has finished, and every
future transaction gets a larger id, so nothing can appear later behind a cursor: no row is
skipped. A row's position changes only when it is written again, which is a new change to
report: no row is repeated within one change. The horizon is computed in one statement and the
rows read in the next (READ COMMITTED: a fresher snapshot), so a transaction that ends between
the two is visible.

On a Citus cluster each node numbers its own transactions, and a row's trigger runs on the node
that holds its shard. So the trigger there (`CLUSTER_TRIGGER_SQL`, installed by
`manage.py distribute_tables`) writes the node's group in the top bits: `sync_txid = group << 48
| xid` (2^48 transactions a node: centuries). A node's rows form their own range, ordered by
that node's transaction ids, with that node's own horizon; the client's token keeps one
position per node. A page reads every node's range at once, merged in (sync_txid, id) order,
and moves each node's position to the last of its rows it returned. A distributed transaction
is prepared on each worker before it commits (two-phase commit): a prepared transaction has no
backend but is still running, hence `pg_prepared_xacts` in the horizon. Rows copied from the
single server when the tables were distributed keep their group-0 (coordinator) positions; a
group that has left the cluster has only finished transactions.

Costs: a long-running writing transaction holds the horizon back (the client sees those rows
later, never loses them). The database role must be allowed to see other sessions'
`backend_xid` in pg_stat_activity (the owner role, or pg_read_all_stats) — see docs/api.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core import signing
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.utils.translation import gettext_lazy as _
from rest_framework import status

from bpjsportal.core.api.errors import ApiError

R = TypeVar("R")  # a model instance, or a `.values()` dict

GROUP_SHIFT = 48  # sync_txid = node group << 48 | the node's transaction id

# One value: the horizon of the node it runs on (see the module's docstring): the oldest
# transaction of this database still running (a backend's or a prepared one), or the
# snapshot's xmax (one past the newest finished) when none is. {mine}: the backends of the
# reading session's own transaction, whose rows it sees (as ever on one server): the horizon
# may pass it, never another running one. A running transaction's 32-bit xid is widened to the
# 64-bit id nearest xmax (xmax counts finished transactions only: a running one may be above).
_HORIZON = """
WITH snap AS (
    SELECT CAST(pg_snapshot_xmax(pg_current_snapshot())::text AS bigint) AS xmax
), running AS (
    SELECT backend_xid::text::bigint AS xid, pid IN ({mine}) AS mine FROM pg_stat_activity
     WHERE datname = current_database() AND backend_xid IS NOT NULL
    UNION ALL
    SELECT transaction::text::bigint, false FROM pg_prepared_xacts
     WHERE database = current_database()
), wide AS (
    SELECT xmax + mod(xid - mod(xmax, 4294967296) + 6442450944, 4294967296) - 2147483648 AS xid,
           mine
    FROM running, snap
)
SELECT least(greatest(xmax, (SELECT max(xid) + 1 FROM wide WHERE mine)),
             (SELECT min(xid) FROM wide WHERE NOT mine))
FROM snap
"""
HORIZON_SQL = _HORIZON.format(mine="SELECT pg_backend_pid()")


def worker_horizon_sql(gpid: int) -> str:
    """The horizon on a worker, asked from the coordinator by a session whose Citus global
    process id is `gpid`: that session's own connections there (its transaction) are not
    waited for."""
    # an integer from citus_backend_gpid(), not input
    mine = f"SELECT process_id FROM get_all_active_transactions() WHERE global_pid = {int(gpid)}"  # noqa: S608
    return _HORIZON.format(mine=mine)


# The workers' horizons (run from the coordinator; each command runs in its own transaction
# there, so pg_stat_activity is read fresh).
WORKER_HORIZONS_SQL = """
SELECT n.groupid, r.success, r.result
FROM run_command_on_workers(%s) AS r
JOIN pg_dist_node AS n ON n.nodename = r.nodename AND n.nodeport = r.nodeport
WHERE n.noderole = 'primary'
"""

# On a cluster, the sync trigger functions on every node (enrollment migrations 0004 and 0005
# made them with the plain transaction id): the node's group in the top bits (group 0 is the
# coordinator; read from the node's own catalog, never a remote call).
_NODE_TXID = (
    f"((SELECT groupid FROM pg_catalog.pg_dist_local_group)::bigint << {GROUP_SHIFT})"  # noqa: S608
    " + pg_current_xact_id()::text::bigint"
)
CLUSTER_TRIGGER_SQL = f"""
CREATE OR REPLACE FUNCTION bpu_set_sync_txid() RETURNS trigger AS $$
BEGIN
    NEW.sync_txid := {_NODE_TXID};
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION bpu_set_participant_sync_txid() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - ARRAY['nik_digest', 'nik_encrypted', 'sync_txid'])
            = (to_jsonb(OLD) - ARRAY['nik_digest', 'nik_encrypted', 'sync_txid']) THEN
        NEW.sync_txid := OLD.sync_txid;  -- only the NIK's storage changed (key rotation)
        RETURN NEW;
    END IF;
    NEW.sync_txid := {_NODE_TXID};
    RETURN NEW;
END $$ LANGUAGE plpgsql
"""


def sync_horizon() -> int:
    """Rows of this server with sync_txid below this were written by finished transactions."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # fresh pg_stat_activity
        cursor.execute(HORIZON_SQL)
        return int(cursor.fetchone()[0])


def node_horizons() -> dict[int, int]:
    """group → the horizon of that node, in the group's range of sync_txid. One group (0) on a
    single server; on a cluster, every group the cluster has ever numbered."""
    from bpjsportal.core.distribution import on_cluster

    horizons = {0: sync_horizon()}
    if not on_cluster():
        return horizons
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT last_value, citus_backend_gpid() FROM pg_catalog.pg_dist_groupid_seq"
        )
        last_group, gpid = cursor.fetchone()
        cursor.execute(WORKER_HORIZONS_SQL, [worker_horizon_sql(gpid)])
        answers = cursor.fetchall()
    for group in range(1, int(last_group) + 1):  # a group that left: only finished transactions
        horizons[group] = (group + 1) << GROUP_SHIFT
    for group, ok, result in answers:
        if not ok:  # its rows cannot be read either; a later page will have them
            raise ApiError(
                "sync_unavailable",
                _("Sync is unavailable for a moment; ask again with the same token."),
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        horizons[int(group)] = (int(group) << GROUP_SHIFT) + int(result)
    return horizons


@dataclass(frozen=True)
class Position:
    """A place in one node's range: after the row (txid, id) of that node."""

    txid: int = 0
    id: int = 0

    @property
    def group(self) -> int:
        return self.txid >> GROUP_SHIFT


@dataclass(frozen=True)
class Since:
    """A client's token: the position reached on each node (a node not named: its start)."""

    positions: tuple[Position, ...] = ()

    def at(self, group: int) -> Position:
        for pos in self.positions:
            if pos.group == group:
                return pos
        return Position(group << GROUP_SHIFT, 0)

    def moved(self, reached: dict[int, Position]) -> Since:
        merged = {p.group: p for p in self.positions} | reached
        return Since(tuple(merged[g] for g in sorted(merged)))


def encode_token(kind: str, since: Since) -> str:
    # one node (a single server): [txid, id], as tokens have always been; else [[txid, id], ...]
    pairs = [[p.txid, p.id] for p in since.positions] or [[0, 0]]
    body: Any = pairs[0] if len(pairs) == 1 and pairs[0][0] >> GROUP_SHIFT == 0 else pairs
    return signing.dumps(body, salt=f"api-sync-{kind}", compress=False)


def _pair(value: Any) -> Position:
    if not (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and v >= 0 for v in value)
    ):
        raise ValueError(value)
    return Position(value[0], value[1])


def decode_token(kind: str, token: str | None) -> Since:
    if not token:
        return Since()
    try:
        body = signing.loads(token, salt=f"api-sync-{kind}")
        if isinstance(body, list) and body and all(isinstance(v, list) for v in body):
            positions = tuple(_pair(v) for v in body)
        else:
            positions = (_pair(body),)
        if len({p.group for p in positions}) != len(positions):
            raise ValueError(token)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise ApiError(
            "invalid_token",
            _("The sync token is not valid; start again without one."),
        ) from exc
    return Since(positions)


@dataclass(frozen=True)
class SyncPage(Generic[R]):
    rows: list[R]
    next_position: Since
    has_more: bool


def sync_page(qs: QuerySet[Any, R], since: Since, limit: int) -> SyncPage[R]:
    """The next `limit` changes after `since`, in (sync_txid, id) order, each node's below its
    horizon."""
    ranges = Q()
    for group, horizon in sorted(node_horizons().items()):
        start = since.at(group)
        # A row comparison, (sync_txid, id) > (t, i): PostgreSQL starts the index scan at
        # the position. The equivalent `txid > t OR (txid = t AND id > i)` is only a filter
        # on a scan from the start of the index, so each page read every row before it
        # (111 ms at row 43,000 of 100,000; quadratic over a catch-up; bench/bench_sync.py).
        ranges |= Q(
            TupleGreaterThan(Tuple(F("sync_txid"), F("id")), (start.txid, start.id)),
            sync_txid__lt=horizon,
        )
    rows = list(qs.filter(ranges).order_by("sync_txid", "id")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    # each node's rows come in its own order: its position moves to the last of them here
    reached = {(pos := _position(row)).group: pos for row in rows}
    return SyncPage(rows=rows, next_position=since.moved(reached), has_more=has_more)


def _position(row: Any) -> Position:
    """Where a row is in the sync order: a model instance, or a `.values()` dict that has
    `sync_txid` and `id` among its keys (the serializer-free participant page)."""
    if isinstance(row, dict):
        return Position(row["sync_txid"], row["id"])
    return Position(row.sync_txid, row.pk)
