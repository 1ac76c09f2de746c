"""The audit tables are append-only in the database itself (same rule as the ledger, contributions
migration 0003): BEFORE UPDATE/DELETE (per row) and BEFORE TRUNCATE (per statement) raise.
TRUNCATE is let through only in a session that set `bpu.audit_truncate = 'allow'`, which the app
does solely on a connection to its configured *test* database (bpjsportal.audit.apps).

Plain triggers, not django-pgtrigger ones, so pgtrigger's `pgtrigger.ignore` session setting
cannot switch them off. A new event table needs the same guard: a test checks every one has it.
"""

from django.db import migrations

TABLES = [
    "audit_apiclientevent",
    "audit_incomelevelevent",
    "audit_ledgerentryevent",
    "audit_participantevent",
    "audit_paymentevent",
    "audit_ratediscountevent",
    "audit_ratescheduleevent",
    "audit_staffprofileevent",
    "audit_targetbreakdownevent",
    "audit_targetevent",
    "audit_targetmilestoneevent",
    "audit_usergroupevent",
    "audit_userevent",
    "audit_userpermissionevent",
]

GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_append_only_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('bpu.audit_truncate', true) = 'allow' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'The audit trail is never edited.';
END $$;
"""


def guard(table: str) -> str:
    return f"""
CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION audit_append_only_guard();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only_guard();
"""


def unguard(table: str) -> str:
    return f"""
DROP TRIGGER IF EXISTS {table}_no_change ON {table};
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunSQL(
            GUARD_FUNCTION + "".join(guard(t) for t in TABLES),
            "".join(unguard(t) for t in TABLES) + "DROP FUNCTION IF EXISTS audit_append_only_guard();",
        ),
    ]
