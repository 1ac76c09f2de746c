"""`audit_set_local(setting, value, force)`: the audit triggers' settings for the rest of the
transaction, on every node of a Citus cluster (bpjsportal/core/audit_context.py).

On one server the portal sets them with `set_config(..., true)` at the head of each writing
statement and never calls this function. On a Citus coordinator `set_config` stays on the
coordinator: the triggers of the sharded tables fire on the workers and would record their events
without context. Citus forwards an actual `SET LOCAL` statement to the workers' connections of the
transaction (and replays it on the connections it opens later) when
`citus.propagate_set_commands = local` — but it forwards the *whole query string* the SET came in,
so the SET must arrive as a statement of its own: run here with EXECUTE, the string it forwards is
the one SET.

Only the three settings of the audit triggers may be set. Unless `force`, a setting that already
holds the value in this transaction is not set again (a request's writes share one context: one
SET per transaction, not one per statement); `force` is for the first write after a savepoint was
released, which Citus forgets the savepoint's SETs for (new connections would not get them)."""

from django.db import migrations

SET_LOCAL = r"""
CREATE OR REPLACE FUNCTION audit_set_local(setting text, value text, force boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF setting NOT IN ('pghistory.context_id', 'pghistory.context_metadata', 'pgtrigger.ignore')
    THEN
        RAISE EXCEPTION 'audit_set_local: % is not a setting of the audit triggers', setting;
    END IF;
    IF NOT force AND current_setting(setting, true) IS NOT DISTINCT FROM coalesce(value, '') THEN
        RETURN;
    END IF;
    IF current_setting('citus.propagate_set_commands', true) = 'none' THEN
        PERFORM set_config('citus.propagate_set_commands', 'local', true);
    END IF;
    EXECUTE format('SET LOCAL %s = %L', setting, coalesce(value, ''));
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0014_verbose_names")]

    operations = [
        migrations.RunSQL(
            SET_LOCAL, reverse_sql="DROP FUNCTION IF EXISTS audit_set_local(text, text, boolean)"
        )
    ]
