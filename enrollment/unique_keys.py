"""Claims of values unique across participants (enrollment.models.UniqueKey).

A write that creates a row holding such a value claims it first, in the same transaction:
`claim(rows)` inserts the (kind, value, participant_id) rows that are still free and returns the
ones that were taken, so the caller answers as the unique constraint would have (a duplicate NIK,
a replayed payment ...). A rolled-back transaction releases its claims with it. On a Citus
cluster this is what keeps a NIK unique across shards; on a single server the rows' own
constraints stand beside it.

Kinds: `nik` (Participant.nik_digest, hex), `kpj` (kpj_number), `client_token` (the registration
form's token), `payment_ref` (Payment channel and reference, see `payment_ref`), `bill_code`
(Bill.code), `notification_ref` (a channel's BillNotification reference, with its client id),
`gateway_message` (a sent Reminder's gateway_message_id, claimed when the dispatch stores it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import IntegrityError, connection

NIK, KPJ, CLIENT_TOKEN, PAYMENT_REF = "nik", "kpj", "client_token", "payment_ref"

# A multi-row VALUES list, not INSERT ... SELECT FROM unnest(...): on a Citus cluster an
# INSERT ... SELECT whose rows go to several shards locks each shard against every other such
# statement until the transaction ends, so two transactions claiming twice (two registrations)
# deadlocked; plain INSERTs of rows commute and take no such lock (tests/api/test_sync.py's
# concurrent writers).
_CLAIM = """INSERT INTO enrollment_uniquekey (kind, value, participant_id) VALUES {rows}
ON CONFLICT DO NOTHING RETURNING kind, value
"""
_RELEASE = """
DELETE FROM enrollment_uniquekey k USING unnest(%s::text[], %s::text[]) AS r(kind, value)
WHERE k.kind = r.kind AND k.value = r.value
"""
_HOLDERS = """
SELECT k.kind, k.value, k.participant_id FROM enrollment_uniquekey k
JOIN unnest(%s::text[], %s::text[]) AS r(kind, value) ON k.kind = r.kind AND k.value = r.value
"""


def nik_value(digest: bytes | memoryview) -> str:
    return bytes(digest).hex()


def payment_ref(channel: str, reference: str) -> str:
    return f"{channel}\x1f{reference}"


def claim(rows: Iterable[tuple[str, str, int]]) -> set[tuple[str, str]]:
    """Claim every (kind, value, participant_id) still free; returns the (kind, value) pairs that
    were already held (by an earlier row, or earlier in `rows`). Claims are taken in sorted order,
    so two transactions claiming the same values wait for each other instead of deadlocking."""
    wanted = sorted(rows)
    if not wanted:
        return set()
    sql, params = claim_sql(wanted)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        won = {(k, v) for k, v in cursor.fetchall()}
    return {(k, v) for k, v, _p in wanted} - won


def claim_sql(rows: Iterable[tuple[str, str, int]]) -> tuple[str, list[Any]]:
    """The claim of `claim` as one statement (sql, params), to run alone or as the first part of
    a chained write (contributions.services: a payment's claim, row and ledger entry in one
    statement); it returns the (kind, value) of each value it won."""
    wanted = sorted(rows)
    sql = _CLAIM.format(rows=", ".join(["(%s, %s, %s)"] * len(wanted)))
    return sql.strip(), [x for row in wanted for x in row]


def release(keys: Iterable[tuple[str, str]]) -> None:
    """Give back claims this transaction made and will not use (a KPJ number to draw again)."""
    pairs = list(keys)
    if pairs:
        with connection.cursor() as cursor:
            cursor.execute(_RELEASE, [[k for k, _v in pairs], [v for _k, v in pairs]])


def holders(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Who holds each of these values now: (kind, value) -> participant id."""
    pairs = list(keys)
    if not pairs:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_HOLDERS, [[k for k, _v in pairs], [v for _k, v in pairs]])
        return {(k, v): int(p) for k, v, p in cursor.fetchall()}


def next_participant_ids(count: int) -> list[int]:
    """`count` new participant ids from the participants' own sequence (a claim names its
    holder before the row is written)."""
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('enrollment_participant', 'id')) "
            "FROM generate_series(1, %s)",
            [count],
        )
        return [int(r[0]) for r in cursor.fetchall()]


class KeyTaken(IntegrityError):
    """A value unique across participants is held already: what the row's unique constraint
    would have said. `constraint` names that constraint, `kinds` the kinds that were taken."""

    def __init__(self, taken: set[tuple[str, str]], constraints: dict[str, str]) -> None:
        self.kinds = {k for k, _v in taken}
        self.constraint = next((constraints[k] for k in sorted(self.kinds) if k in constraints), "")
        super().__init__(
            f'duplicate key value violates unique constraint "{self.constraint}" '
            f"({', '.join(sorted(self.kinds))})"
        )


def claim_for(objs: Sequence[Any]) -> None:
    """Claim the unique keys of model instances about to be inserted (their `unique_keys()`).
    A participant without an id gets one first (its keys name it). All or nothing: when one key
    is held already, the keys just claimed are given back and KeyTaken is raised."""
    if not objs:
        return
    model = type(objs[0])
    missing = [o for o in objs if getattr(o, "participant_id", None) is None and o.pk is None]
    for obj, pk in zip(missing, next_participant_ids(len(missing)), strict=True):
        obj.pk = pk
    rows = [(kind, value, holder) for o in objs for kind, value, holder in o.unique_keys()]
    taken = claim(rows)
    if taken:
        release({(k, v) for k, v, _p in rows} - taken)
        raise KeyTaken(taken, getattr(model, "UNIQUE_KEY_CONSTRAINTS", {}))


_STORED = {
    "participants": """
        INSERT INTO enrollment_uniquekey (kind, value, participant_id)
        SELECT 'nik', encode(nik_digest, 'hex'), id FROM enrollment_participant WHERE id > %s
        UNION ALL SELECT 'kpj', kpj_number, id FROM enrollment_participant WHERE id > %s
        UNION ALL SELECT 'client_token', client_token::text, id FROM enrollment_participant
        WHERE id > %s AND client_token IS NOT NULL""",
    "payments": """
        INSERT INTO enrollment_uniquekey (kind, value, participant_id)
        SELECT 'payment_ref', channel || chr(31) || reference, participant_id
        FROM contributions_payment WHERE id > %s""",
}


def stored_claims_sql(rows: str) -> str:
    """The INSERT that claims the keys of `rows` ("participants" or "payments") with ids above
    its parameters (each `%s`: the same id); claim_stored runs it, the benchmark generator too."""
    return _STORED[rows]


def claim_stored(rows: str, *, after_id: int) -> None:
    """Claim the keys of `rows` ("participants" or "payments") written in bulk by COPY (the demo,
    the benchmark data) with ids above `after_id`, in the same transaction. A key held already
    fails the statement (IntegrityError): generated data must not repeat one."""
    sql = stored_claims_sql(rows)
    with connection.cursor() as cursor:
        cursor.execute(sql, [after_id] * sql.count("%s"))
