"""Turn a migrated database on a Citus coordinator into the sharded layout (issue 21).

    manage.py distribute_tables [--shard-count N] [--dry-run]

docs/operations.md ("Distributing by participant") describes the layout; the plan is read from
the catalog by bpjsportal/core/distribution.py (layout): every table sharded by participant is
distributed and colocated with `enrollment_participant`; the two tables whose rows may have no
participant, and the audit tables of the small ones, stay on the coordinator; every other table
becomes a reference table. Unique keys
that hold across participants cannot be checked by one shard: they are dropped from the sharded
table here, and the lookup table of enrollment/unique_keys.py, written in the same transaction,
check them instead (on the single server and on the cluster alike).

Idempotent: a table Citus already knows is left alone, so the command can be run after every
`migrate` (a new migration's table is then distributed or made a reference table).
Refuses to run where the citus extension is absent.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from bpjsportal.core import distribution
from bpjsportal.core.api import sync

# DDL on tables with triggers (the audit and ledger triggers run on the shards) needs this
SESSION = "SET citus.enable_unsafe_triggers = on"
# one transaction for all of it: Citus then needs its DDL run one shard connection at a time
SEQUENTIAL = "SET LOCAL citus.multi_shard_modify_mode = sequential"


class Command(BaseCommand):
    help = "Distribute the tables of a migrated database on a Citus coordinator (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shard-count", type=int, default=0, help="default: Citus's own")
        parser.add_argument("--dry-run", action="store_true", help="print the steps only")

    def handle(self, *args: Any, **options: Any) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
            if cursor.fetchone() is None:
                raise CommandError(
                    "this database has no citus extension: run distribute_tables on a Citus "
                    "coordinator (CREATE EXTENSION citus; workers added with citus_add_node)"
                )
            # Django's session on the coordinator runs in UTC and Citus does not forward it: the
            # workers' own sessions must be in UTC too, or a date cast on a shard (a month of a
            # date, a timestamp's day) differs from the same statement on one server
            cursor.execute(
                "SELECT nodename, nodeport, result FROM run_command_on_workers('SHOW timezone')"
            )
            zones = [f"{h}:{p} {z}" for h, p, z in cursor.fetchall() if z not in ("UTC", "Etc/UTC")]
            if zones:
                raise CommandError(
                    "set timezone = 'UTC' in postgresql.conf of every worker (then reload): "
                    + ", ".join(zones)
                )
            schema = distribution.read_schema(cursor)
            pending = distribution.keys_sql(schema)
            if pending:
                raise CommandError(
                    "the keys are not distributable yet (run `manage.py migrate` first): "
                    + pending[0]
                )
            # tables already distributed or copied (a plain table Citus tracks because a reference
            # table points at it, a "local" one, is still to be placed)
            cursor.execute(
                "SELECT table_name::text FROM citus_tables "
                "WHERE citus_table_type IN ('distributed', 'reference')"
            )
            known = {row[0] for row in cursor.fetchall()}
            cursor.execute("SELECT table_name::text FROM citus_tables")
            known_local = {row[0] for row in cursor.fetchall()} - known
            plan = distribution.layout(schema)
            steps: list[tuple[str, list[Any]]] = [(SESSION, []), (SEQUENTIAL, [])]
            if options["shard_count"]:
                steps.append((f"SET citus.shard_count = {int(options['shard_count'])}", []))
            shard_tables = {t for t, _, _ in plan.distributed}
            for c in plan.dropped:
                if c.table in known and c.table in shard_tables:
                    continue
                if c.kind == "i":
                    steps.append((f'DROP INDEX IF EXISTS "{c.name}"', []))
                else:
                    steps.append(
                        (f'ALTER TABLE "{c.table}" DROP CONSTRAINT IF EXISTS "{c.name}"', [])
                    )
            cursor.execute(ENABLED_TRIGGERS)
            triggers: dict[str, list[str]] = {}
            for table, name in cursor.fetchall():
                triggers.setdefault(table, []).append(name)
            steps += [(f"ALTER DATABASE {_db(cursor)} SET {k} = {v}", []) for k, v in SETTINGS]
            # A sharded table that points at a plain table would become a Citus "local" table
            # when that one is made a reference table, and such a table can no longer be
            # distributed (identity columns). So: those foreign keys off, the sharded tables
            # distributed, the reference tables made, the foreign keys back.
            outward = [
                c
                for t, _, _ in plan.distributed
                if t not in known
                for c in schema.of(t, "f")
                if c.ref_table in plan.reference and c not in plan.dropped
            ]
            for c in outward:
                steps.append((f'ALTER TABLE "{c.table}" DROP CONSTRAINT "{c.name}"', []))
            for table, column, colocate in plan.distributed:
                if table in known:
                    continue
                create = (
                    "SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                    [table, column, "default" if colocate == table else colocate],
                )
                steps += _quiet(triggers, table, create)
            for table in plan.reference:
                if table not in known:
                    steps += _quiet(triggers, table, ("SELECT create_reference_table(%s)", [table]))
            for table in plan.local:
                if table not in known_local:
                    steps.append(("SELECT citus_add_local_table_to_metadata(%s)", [table]))
            for c in outward:
                steps.append(
                    (f'ALTER TABLE "{c.table}" ADD CONSTRAINT "{c.name}" {c.definition}', [])
                )
            cursor.execute(PGTRIGGER_TRIGGERS)
            on_reference = [name for table, name in cursor.fetchall() if table in plan.reference]
            steps.append((distribution.guard_sql(on_reference), []))
            # the sync position names the node that wrote the row (bpjsportal/core/api/sync.py)
            steps.append((sync.CLUSTER_TRIGGER_SQL, []))
            with transaction.atomic():  # all of it or nothing
                for sql, params in steps:
                    shown = sql % tuple(repr(p) for p in params) if params else sql
                    self.stdout.write(shown)
                    if not options["dry_run"]:
                        cursor.execute(sql, params)
        done = len([s for s in steps if "create_" in s[0]])
        self.stdout.write(
            f"{'would distribute' if options['dry_run'] else 'distributed'}: {done} tables "
            f"({len(known)} already known to Citus)"
        )


# The database's settings on a cluster, for every later session:
SETTINGS = [
    # A transaction that writes shards and then a reference table (a payment, then its audit
    # context or a statement) must use one connection per node: Citus refuses it otherwise.
    ("citus.multi_shard_modify_mode", "sequential"),
    # A join of two sharded tables on a column other than the participant (a report's rare
    # query) is run by repartitioning instead of refused; the hot paths join by participant.
    ("citus.enable_repartition_joins", "on"),
]


def _db(cursor: Any) -> str:
    cursor.execute("SELECT quote_ident(current_database())")
    return str(cursor.fetchone()[0])


# the table's own triggers that fire now (audit, append-only, sync position)
ENABLED_TRIGGERS = """
SELECT tgrelid::regclass::text, tgname FROM pg_trigger
WHERE NOT tgisinternal AND tgenabled = 'O'
  AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
"""


PGTRIGGER_TRIGGERS = """
SELECT tgrelid::regclass::text, tgname FROM pg_trigger
WHERE NOT tgisinternal AND tgname LIKE 'pgtrigger%%'
  AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
"""


def _quiet(
    triggers: dict[str, list[str]], table: str, create: tuple[str, list[Any]]
) -> list[tuple[str, list[Any]]]:
    """Citus copies a table's rows into its shards with the table's triggers active there: the
    audit triggers would record every existing row a second time. They are switched off for the
    copy and on again after it, on the shards too."""
    names = triggers.get(table, [])
    off: list[tuple[str, list[Any]]] = [
        (f'ALTER TABLE "{table}" DISABLE TRIGGER "{n}"', []) for n in names
    ]
    on: list[tuple[str, list[Any]]] = [
        (f'ALTER TABLE "{table}" ENABLE TRIGGER "{n}"', []) for n in names
    ]
    return [*off, create, *on]
