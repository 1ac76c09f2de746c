"""The ledger is append-only in the database itself, not only in Python.

- BEFORE UPDATE/DELETE (per row) and BEFORE TRUNCATE (per statement) raise. TRUNCATE is let
  through only in a session that set `bpu.ledger_truncate = 'allow'`, which the app does solely
  on a connection to its configured *test* database (so the test runner can flush it; see
  contributions.apps.allow_test_database_flush).
- BEFORE INSERT of a reversal: it must cancel a *payment* entry of the same participant with the
  opposite amount (a reversal of a reversal is refused here as well as in the service); the
  one-to-one `reverses` column already makes a second reversal of the same entry impossible.
- Existing participants get their coverage row (status fixed by the next daily refresh).
"""

from django.conf import settings
from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION contributions_ledger_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_setting('bpu.ledger_truncate', true) = 'allow' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'contributions_ledgerentry is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Post a reversal or adjustment entry instead.';
END $$;

CREATE TRIGGER contributions_ledger_no_change
    BEFORE UPDATE OR DELETE ON contributions_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION contributions_ledger_guard();
CREATE TRIGGER contributions_ledger_no_truncate
    BEFORE TRUNCATE ON contributions_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION contributions_ledger_guard();

CREATE OR REPLACE FUNCTION contributions_ledger_reversal_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM contributions_ledgerentry e
        WHERE e.id = NEW.reverses_id AND e.kind = 'payment'
          AND e.participant_id = NEW.participant_id AND e.amount = -NEW.amount
    ) THEN
        RAISE EXCEPTION 'a reversal must cancel one payment entry of the same participant'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER contributions_ledger_reversal_check
    BEFORE INSERT ON contributions_ledgerentry
    FOR EACH ROW WHEN (NEW.kind = 'reversal')
    EXECUTE FUNCTION contributions_ledger_reversal_check();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS contributions_ledger_reversal_check ON contributions_ledgerentry;
DROP TRIGGER IF EXISTS contributions_ledger_no_truncate ON contributions_ledgerentry;
DROP TRIGGER IF EXISTS contributions_ledger_no_change ON contributions_ledgerentry;
DROP FUNCTION IF EXISTS contributions_ledger_reversal_check();
DROP FUNCTION IF EXISTS contributions_ledger_guard();
"""

BACKFILL = f"""
INSERT INTO contributions_coverage
    (participant_id, status, start_month, continuous_months, reactivations, balance, updated_at)
SELECT p.id, 'grace', date_trunc('month', p.created_at AT TIME ZONE '{settings.TIME_ZONE}')::date,
       0, 0, 0, now()
FROM enrollment_participant p
ON CONFLICT (participant_id) DO NOTHING;
"""


class Migration(migrations.Migration):
    dependencies = [("contributions", "0002_coverage_payments_ledger")]

    operations = [
        migrations.RunSQL(GUARD, UNGUARD),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
    ]
