"""Rows of the tables sharded by participant (docs/operations.md, "Distributing by participant").

`ParticipantRow` is the base of every model whose table carries `participant_id` and is sharded by
it on a Citus cluster. Saving such a row updates it `WHERE id = … AND participant_id = …` and never
sets `participant_id`: a row always stays with its participant (Citus refuses to change a row's
distribution value), and the update goes straight to the one shard holding it. On a single server
the same statements run, with the same result.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from bpjsportal.core.distribution import on_cluster


class ShardedQuerySet(models.QuerySet[Any]):
    """bulk_create for the rows of sharded tables: a UniqueKeyed model's unique keys are claimed
    first (enrollment/unique_keys.py); on a cluster every new row gets its id from the table's
    sequence before the INSERT. (A multi-row INSERT ... RETURNING id on Citus returns the rows
    shard by shard, not in the order they were given, and Django hands the returned ids to the
    objects in order: a payment of a sponsor batch got another participant's id, and its ledger
    entry pointed at the wrong payment.)"""

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        objs = list(objs)
        if objs and issubclass(self.model, UniqueKeyed):
            from enrollment.unique_keys import claim_for

            claim_for(objs)
        if objs and on_cluster():
            assign_ids(self.model, [o for o in objs if o.pk is None])
        return super().bulk_create(objs, *args, **kwargs)


def assign_ids(model: type[models.Model], objs: list[Any]) -> None:
    """Give `objs` (new rows of `model`) ids from the table's own sequence, in one statement."""
    if not objs:
        return
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, len(objs)],
        )
        for obj, (value,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = value


class ParticipantRow(models.Model):
    objects = ShardedQuerySet.as_manager()

    class Meta:
        abstract = True

    def _do_update(  # type: ignore[override]
        self, base_qs: Any, using: Any, pk_val: Any, values: list[Any], *args: Any, **kwargs: Any
    ) -> bool:
        kept = [v for v in values if v[0].attname != "participant_id"]
        if len(kept) < len(values):
            base_qs = base_qs.filter(participant_id=self.participant_id)  # type: ignore[attr-defined]
        return bool(super()._do_update(base_qs, using, pk_val, kept, *args, **kwargs))


class UniqueKeyed(models.Model):
    """A model holding values unique across participants: `unique_keys()` names them as
    (kind, value, participant id); inserting the row (save or bulk_create) claims them first in
    the same transaction, and a value held already raises unique_keys.KeyTaken, an
    IntegrityError naming the row's own constraint (UNIQUE_KEY_CONSTRAINTS)."""

    UNIQUE_KEY_CONSTRAINTS: dict[str, str] = {}

    objects = ShardedQuerySet.as_manager()

    class Meta:
        abstract = True

    # Set on a new row whose keys its writer claimed already, in the same transaction (a bill's
    # payment notification claims its reference before deciding anything): save() then does not
    # claim them again (a second claim of a value this transaction holds would be "taken").
    keys_claimed = False

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and not self.keys_claimed:
            from enrollment.unique_keys import claim_for

            claim_for([self])
        super().save(*args, **kwargs)

    def unique_keys(self) -> list[tuple[str, str, int]]:
        """The row's (kind, value, participant id) values unique across participants. Every
        concrete model overrides it (tests/enrollment/test_distribution.py checks); this base
        one is never called."""
        raise NotImplementedError(f"{type(self).__name__} must name its unique keys")


def locked_rows(
    queryset: Any, ids: list[int], *, field: str = "participant_id", **lock: Any
) -> list[Any]:
    """The rows of `queryset` whose `field` (the table's distribution column) is in `ids`,
    locked FOR UPDATE, in `field` order (concurrent lockers cannot deadlock). On a single server
    one statement; on a Citus cluster, which locks rows only within one shard per statement, one
    statement per shard holding them. `lock`: select_for_update's options (skip_locked, of)."""
    ordered = sorted(set(ids))
    if not ordered:
        return []
    if not on_cluster():
        return list(
            queryset.select_for_update(**lock).filter(**{f"{field}__in": ordered}).order_by(field)
        )
    from django.db import connection

    table = queryset.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT get_shard_id_for_distribution_column(%s, x), x FROM unnest(%s::bigint[]) x",
            [table, ordered],
        )
        shards: dict[int, list[int]] = {}
        for shard, value in cursor.fetchall():
            shards.setdefault(int(shard), []).append(int(value))
    rows: list[Any] = []
    for shard in sorted(shards, key=lambda s: min(shards[s])):
        rows += queryset.select_for_update(**lock).filter(**{f"{field}__in": shards[shard]})
    return sorted(rows, key=lambda r: getattr(r, field if field != "id" else "pk"))
