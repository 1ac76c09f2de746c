"""Model instances as SQL fragments, for write paths that chain several rows into one statement.

Identifiers come from the models' _meta and values are bind parameters (hence the S608 noqa).

A write that inserts a row, then a row that points at it, then updates a third, costs one round
trip per statement through the ORM. Where such a chain is the hot path (a single payment: claim,
payment, ledger entry, coverage; a receipt: reminder and outbox row), the writes are sent as one
statement of data-modifying CTEs (`WITH a AS (INSERT ... RETURNING id), b AS (INSERT ... SELECT
... FROM a) ...`). These helpers build the parts from the models' `_meta` exactly as
`Model.save()` would write the row: each field's `pre_save` (auto_now / auto_now_add set the
instance's attribute too) and `get_db_prep_save`, every value cast to its column's type (so the
parts read the same under client- or server-side parameter binding), fields left to a
`db_default` omitted. Row triggers (audit, sync positions, append-only guards) fire as for any
INSERT or UPDATE; the statement is atomic, so it writes all of the chain or none of it.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from django.db import connection, models
from django.db.models.expressions import DatabaseDefault

Values = list[tuple[str, str, Any]]  # (quoted column, SQL placeholder, parameter)


@functools.cache
def _columns(model: type[models.Model], names: tuple[str, ...]) -> list[tuple[Any, str, str]]:
    """(field, quoted column, placeholder with its cast) of the named fields: built once per
    model and field list (a field's SQL type takes microseconds to work out, every time)."""
    fields = [cast("models.Field[Any, Any]", model._meta.get_field(name)) for name in names]
    return [
        (f, connection.ops.quote_name(str(f.column)), f"CAST(%s AS {f.cast_db_type(connection)})")
        for f in fields
    ]


def _values(obj: models.Model, names: tuple[str, ...], *, add: bool) -> Values:
    out: Values = []
    for field, column, placeholder in _columns(type(obj), names):
        value = field.pre_save(obj, add)
        if isinstance(value, DatabaseDefault):
            continue
        out.append((column, placeholder, field.get_db_prep_save(value, connection)))
    return out


def insert_select(
    obj: models.Model, *, source: str = "", columns: dict[str, str] | None = None
) -> tuple[str, list[Any]]:
    """`INSERT INTO <table> (<columns>) SELECT <values> [FROM <source>]` for the new row `obj`
    (its primary key included when it is set). `columns` replaces a column's value by an SQL
    expression over `source` (e.g. {"payment_id": "pay.id"}); end it with RETURNING as needed."""
    meta = obj._meta
    replaced = columns or {}
    names = tuple(
        f.name
        for f in meta.local_concrete_fields
        if not (f.primary_key and obj.pk is None) and f.column not in replaced
    )
    values = _values(obj, names, add=True)
    cols = [c for c, _p, _v in values] + [connection.ops.quote_name(c) for c in replaced]
    exprs = [p for _c, p, _v in values] + list(replaced.values())
    sql = f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({', '.join(cols)}) "
    sql += f"SELECT {', '.join(exprs)}" + (f" FROM {source}" if source else "")  # noqa: S608
    return sql, [v for _c, _p, v in values]


def update_where(obj: models.Model, fields: list[str], where: str) -> tuple[str, list[Any]]:
    """`UPDATE <table> SET <fields> WHERE <primary key> = <obj's> AND <where>` for the named
    fields of `obj` (its auto_now fields set as save() sets them)."""
    meta = obj._meta
    values = _values(obj, tuple(fields), add=False)
    pk = meta.pk
    assert pk is not None
    sets = ", ".join(f"{c} = {p}" for c, p, _v in values)
    sql = f"UPDATE {connection.ops.quote_name(meta.db_table)} SET {sets} "  # noqa: S608
    sql += f"WHERE {connection.ops.quote_name(str(pk.column))} = %s AND ({where})"
    return sql, [v for _c, _p, v in values] + [pk.get_db_prep_value(obj.pk, connection)]
