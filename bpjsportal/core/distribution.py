"""Sharding by participant: which tables are distributed, and the key changes that allow it.

The big tables are sharded by participant on a Citus cluster (docs/operations.md, "Distributing by
participant"). Citus needs the distribution column in every primary key and unique constraint, and
a foreign key between two distributed tables must include it on both sides. This module reads the
schema from the catalog, so the same rules apply to every table that carries a participant:

- `distributed_tables()`: every table with a NOT NULL `participant_id` is distributed by it and
  colocated with `enrollment_participant` (distributed by `id`); the participants' own audit
  table by `id` too. `COORDINATOR_ONLY` tables have rows without a participant and stay on the
  coordinator; `LOOKUPS` tables are distributed by the unique value they hold.
- `keys_sql()`: the statements that make a single PostgreSQL distributable and keep it working as
  before: primary keys `(participant_id, id)`; a unique constraint on a column that points at the
  same participant's row (a payment, a ledger entry, a bill ...) gets `participant_id` in front,
  which is the same rule because every such row has one participant; the foreign keys between those
  tables become composite `(participant_id, x_id) -> (participant_id, id)`, so a row can only point
  at a row of its own participant. The migration contributions/0027 runs them; they are idempotent.
- Uniqueness that is global (a NIK, a KPJ number, a payment's channel reference ...) cannot be
  checked by one shard. `GLOBAL_UNIQUE` lists it; on a cluster those constraints are replaced by the
  lookup tables of enrollment.lookups, written in the same transaction (distribute_tables drops
  the shard-level constraint only where the lookup table exists).

Nothing here imports the project's apps: it works on table and column names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PARTICIPANTS = "enrollment_participant"
# tables distributed by a column other than participant_id (and colocated with the participants)
BY_ID = {PARTICIPANTS: "id", "audit_participantevent": "id"}
# lookup tables of values unique across participants, sharded by the value itself
LOOKUPS = {"enrollment_uniquekey": "value"}
# rows that may have no participant (an office's share, a settlement line naming no bill): kept
# on the coordinator ("Citus local" tables), where they may still be joined with every table
COORDINATOR_ONLY = ("contributions_commissionline", "contributions_settlementline")


@dataclass(frozen=True)
class Constraint:
    table: str
    name: str
    kind: str  # "p", "u", "f" or "i" (a unique index that is not a constraint)
    columns: tuple[str, ...]
    definition: str
    ref_table: str = ""
    ref_columns: tuple[str, ...] = ()


@dataclass
class Schema:
    columns: dict[str, dict[str, bool]] = field(default_factory=dict)  # table -> column -> NOT NULL
    types: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, column) -> type
    constraints: list[Constraint] = field(default_factory=list)

    def of(self, table: str, kind: str) -> list[Constraint]:
        return [c for c in self.constraints if c.table == table and c.kind == kind]


_COLUMNS = """
SELECT c.relname, a.attname, a.attnotnull, format_type(a.atttypid, a.atttypmod)
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped
"""
_CONSTRAINTS = """
SELECT con.conrelid::regclass::text, con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
       pg_get_constraintdef(con.oid),
       COALESCE(con.confrelid::regclass::text, ''),
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)
FROM pg_constraint con
WHERE con.connamespace = 'public'::regnamespace AND con.contype IN ('p', 'u', 'f')
  AND con.conrelid <> 0
"""
_UNIQUE_INDEXES = """
SELECT t.relname, i.relname,
       ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o),
       pg_get_indexdef(x.indexrelid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = 'public'::regnamespace AND x.indisunique AND NOT x.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid)
"""


def read_schema(cursor: Any) -> Schema:
    schema = Schema()
    cursor.execute(_COLUMNS)
    for table, column, not_null, type_ in cursor.fetchall():
        schema.columns.setdefault(table, {})[column] = bool(not_null)
        schema.types[(table, column)] = type_
    cursor.execute(_CONSTRAINTS)
    for table, name, kind, cols, definition, ref_table, ref_cols in cursor.fetchall():
        schema.constraints.append(
            Constraint(table, name, kind, tuple(cols), definition, ref_table, tuple(ref_cols or ()))
        )
    cursor.execute(_UNIQUE_INDEXES)
    for table, name, cols, definition in cursor.fetchall():
        schema.constraints.append(Constraint(table, name, "i", tuple(cols), definition))
    return schema


def distributed_tables(schema: Schema) -> dict[str, str]:
    """table -> distribution column, for every table sharded on a cluster."""
    out: dict[str, str] = {}
    for table, columns in sorted(schema.columns.items()):
        if table in BY_ID:
            out[table] = BY_ID[table]
        elif table in COORDINATOR_ONLY or table in LOOKUPS:
            continue
        elif columns.get("participant_id"):  # present and NOT NULL
            out[table] = "participant_id"
    return out


def colocated(schema: Schema) -> dict[str, str]:
    """The distributed tables, all colocated with the participants."""
    return distributed_tables(schema)


def _participant_of(table: str, schema: Schema) -> str:
    """The column holding a row's participant, or '' when the table has none."""
    if table in BY_ID:
        return BY_ID[table]
    return "participant_id" if "participant_id" in schema.columns.get(table, {}) else ""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _cols(columns: Iterable[str]) -> str:
    return ", ".join(_q(c) for c in columns)


def keys_sql(schema: Schema) -> list[str]:
    """Statements that give every colocated table keys Citus accepts (see the module's doc).
    Empty once applied: each step looks at what is there."""
    placed = colocated(schema)
    steps: list[str] = []
    # 1. the foreign keys between participant-keyed tables that do not carry the participant
    fks = [
        c
        for c in schema.constraints
        if c.kind == "f"
        and c.ref_table in placed
        and c.ref_table != PARTICIPANTS
        and _participant_of(c.table, schema)
        and _participant_of(c.table, schema) not in c.columns
    ]
    for fk in fks:
        steps.append(f"ALTER TABLE {_q(fk.table)} DROP CONSTRAINT {_q(fk.name)}")
    # 2. primary keys (participant_id, id)
    for table, column in placed.items():
        pks = schema.of(table, "p")
        if not pks or column in pks[0].columns:
            continue
        pk = pks[0]
        steps.append(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(pk.name)}")
        steps.append(
            f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(pk.name)} "
            f"PRIMARY KEY ({_cols((column, *pk.columns))})"
        )
    # audit rows written by a trigger on a worker are numbered from that node's range of the
    # sequence, which Citus only allows for bigint columns
    for table in sorted(schema.columns):
        if table.startswith("audit_") and schema.types.get((table, "pgh_id")) == "integer":
            steps.append(f"ALTER TABLE {_q(table)} ALTER COLUMN pgh_id TYPE bigint")
            steps.append(f"ALTER SEQUENCE IF EXISTS {_q(table + '_pgh_id_seq')} AS bigint")
    # 3. unique constraints and indexes on a same-participant row: participant first
    for table, column in placed.items():
        for unique in schema.of(table, "u") + schema.of(table, "i"):
            if column in unique.columns or not _points_within(table, unique.columns, schema):
                continue
            if unique.kind == "u":
                steps.append(f"ALTER TABLE {_q(table)} DROP CONSTRAINT {_q(unique.name)}")
                steps.append(
                    f"ALTER TABLE {_q(table)} ADD CONSTRAINT {_q(unique.name)} "
                    f"UNIQUE ({_cols((column, *unique.columns))})"
                )
            else:
                head, _, rest = unique.definition.partition(" USING btree (")
                steps.append(f"DROP INDEX {_q(unique.name)}")
                steps.append(f"{head} USING btree ({_q(column)}, {rest}")
    # 4. the foreign keys of step 1, composite
    for fk in fks:
        mine = _participant_of(fk.table, schema)
        theirs = placed[fk.ref_table]
        steps.append(
            f"ALTER TABLE {_q(fk.table)} ADD CONSTRAINT {_q(fk.name)} "
            f"FOREIGN KEY ({_cols((mine, *fk.columns))}) "
            f"REFERENCES {_q(fk.ref_table)} ({_cols((theirs, *fk.ref_columns))}) "
            "DEFERRABLE INITIALLY DEFERRED"
        )
    return steps


def _points_within(table: str, columns: tuple[str, ...], schema: Schema) -> bool:
    """True when every column of a unique key is a foreign key to a row of the same participant
    (optionally with plain columns such as `kind` in a partial index): the key is then unique
    per participant already, and adding participant_id in front keeps the same rule."""
    placed = colocated(schema)
    pointing = {
        col
        for c in schema.of(table, "f")
        if c.ref_table in placed and c.ref_table != PARTICIPANTS
        for col in c.columns
        if col != "participant_id"
    }
    return bool(pointing) and set(columns) <= pointing


def _ordered(tables: Iterable[str], schema: Schema) -> list[str]:
    """Tables ordered so that each comes after the tables its foreign keys point at (Citus
    needs the referenced table distributed, or made a reference table, first)."""
    pending = sorted(set(tables))
    done: list[str] = []
    while pending:
        ready = [
            t
            for t in pending
            if all(c.ref_table == t or c.ref_table not in pending for c in schema.of(t, "f"))
        ]
        if not ready:  # a cycle: keep the alphabetical order for the rest
            ready = pending[:1]
        done += ready
        pending = [t for t in pending if t not in ready]
    return done


@dataclass
class Layout:
    reference: list[str]
    local: list[str]  # kept on the coordinator only (audit rows of the reference tables)
    distributed: list[tuple[str, str, str]]  # (table, column, colocate_with)
    dropped: list[Constraint]  # constraints a shard cannot hold (see global_uniques)


def layout(schema: Schema) -> Layout:
    """docs/operations.md's layout: every table sharded by participant distributed and colocated
    with the participants; every other table a reference table (copied to each node), so that
    any table may point at it, except the COORDINATOR_ONLY tables and the audit tables of the
    reference tables, kept on the coordinator."""
    shard = distributed_tables(schema)
    # The audit rows of a reference table's changes are written by its trigger on the
    # coordinator's copy only (see guard_sql), into a table kept there: a copy on each node
    # would be written once per node.
    local = [
        t
        for t in schema.columns
        if t not in shard and (t.startswith("audit_") or t in COORDINATOR_ONLY)
    ]
    reference = [t for t in schema.columns if t not in shard and t not in local]
    reference = [t for t in reference if t not in LOOKUPS]
    # the participants first: every other sharded table is colocated with them
    distributed = [
        (table, shard[table], PARTICIPANTS)
        for table in [PARTICIPANTS] + [t for t in _ordered(shard, schema) if t != PARTICIPANTS]
    ] + [(t, c, "none") for t, c in sorted(LOOKUPS.items()) if t in schema.columns]
    # a table kept on the coordinator cannot point at a sharded one (the application checks it)
    dropped = global_uniques(schema) + [
        c for t in local for c in schema.of(t, "f") if c.ref_table in shard
    ]
    return Layout(_ordered(reference, schema), sorted(local), distributed, dropped)


def guard_sql(trigger_names: Iterable[str]) -> str:
    """pgtrigger's ignore check, as it must run on a cluster (pgtrigger re-creates this function
    when a migration installs a trigger: distribute_tables, run after every migrate, puts this one
    back):
    - a trigger of a reference table fires on the coordinator's copy only. A reference table's
      write runs on every node's copy; its audit trigger must record the change once, and only
      the coordinator may write the audit table kept there;
    - `pgtrigger.ignore` names the triggers as pgtrigger does (skip_audit_triggers); on a node
      the trigger of shard or copy 102008 is named `<trigger>_102008`, which matches too;
    - the setting is read without pgtrigger's EXCEPTION block: a worker's session never defines
      it (every audited row would pay a rolled-back subtransaction), and on the coordinator the
      subtransaction of a reference table's trigger fired during a COPY makes Citus send a
      SAVEPOINT to the workers' connections busy with that COPY ("another command is already in
      progress")."""
    names = sorted(set(trigger_names))
    array = "ARRAY[" + ", ".join("'" + n.replace("'", "''") + "'" for n in names) + "]::name[]"
    return f"""
CREATE OR REPLACE FUNCTION public._pgtrigger_should_ignore(trigger_name name)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    _pgtrigger_ignore TEXT[];
    _unsharded name := regexp_replace(trigger_name, '_[0-9]+$', '')::name;
BEGIN
    -- (group 0 is the coordinator; read from the node's own catalog, never a remote call)
    IF (SELECT groupid FROM pg_dist_local_group) <> 0 AND _unsharded = ANY({array}) THEN
        RETURN TRUE;  -- a reference table's copy on a worker: the coordinator's copy records it
    END IF;
    _pgtrigger_ignore := NULLIF(CURRENT_SETTING('pgtrigger.ignore', TRUE), '')::TEXT[];
    IF _pgtrigger_ignore IS NOT NULL THEN
        RETURN trigger_name = ANY(_pgtrigger_ignore) OR _unsharded = ANY(_pgtrigger_ignore);
    END IF;
    RETURN FALSE;
END;
$fn$"""  # noqa: S608 - trigger names read from the catalog, quoted as literals


def global_uniques(schema: Schema) -> list[Constraint]:
    """Unique keys of distributed tables that hold across participants (no shard can check)."""
    out = []
    for table, column in distributed_tables(schema).items():
        for unique in schema.of(table, "u") + schema.of(table, "i"):
            if column not in unique.columns:
                out.append(unique)
    return out


_CLUSTER: dict[str, bool] = {}


def on_cluster() -> bool:
    """True when the default database is a Citus coordinator with distributed tables (asked
    once per database name)."""
    from django.db import connection

    name = str(connection.settings_dict.get("NAME"))
    if name not in _CLUSTER:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"
                " AND to_regclass('pg_dist_partition') IS NOT NULL"
            )
            citus = bool(cursor.fetchone()[0])
            if citus:
                cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_dist_partition)")
                citus = bool(cursor.fetchone()[0])
        _CLUSTER[name] = citus
    return _CLUSTER[name]
