"""Bills: the sequence their codes are permuted from (contributions/bills.py), and the suspense
account append-only in the database itself, like the ledger (0003): UPDATE, DELETE and
TRUNCATE raise, TRUNCATE let through only where the test database is flushed
(`bpu.ledger_truncate = 'allow'`, contributions.apps)."""

from django.db import migrations

FORWARD = """
CREATE SEQUENCE IF NOT EXISTS contributions_bill_seq;

CREATE OR REPLACE FUNCTION contributions_append_only_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('bpu.ledger_truncate', true) = 'allow' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TRIGGER contributions_suspense_no_change
    BEFORE UPDATE OR DELETE ON contributions_suspenseitem
    FOR EACH ROW EXECUTE FUNCTION contributions_append_only_guard();
CREATE TRIGGER contributions_suspense_no_truncate
    BEFORE TRUNCATE ON contributions_suspenseitem
    FOR EACH STATEMENT EXECUTE FUNCTION contributions_append_only_guard();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS contributions_suspense_no_truncate ON contributions_suspenseitem;
DROP TRIGGER IF EXISTS contributions_suspense_no_change ON contributions_suspenseitem;
DROP FUNCTION IF EXISTS contributions_append_only_guard();
DROP SEQUENCE IF EXISTS contributions_bill_seq;
"""


class Migration(migrations.Migration):
    dependencies = [("contributions", "0009_bills")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
