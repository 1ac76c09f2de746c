"""The commission lines' guard (0024) in a form a Citus coordinator can run: the statement ids
are read from the transition table first, then the statements are looked up by that array (a
query joining a transition table with a Citus table is refused by Citus's planner). Same rule."""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION contributions_commission_line_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    closed bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'commission lines are never updated'
            USING ERRCODE = 'integrity_constraint_violation';
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT statement_id) INTO ids FROM new_lines;
    ELSE
        SELECT array_agg(DISTINCT statement_id) INTO ids FROM old_lines;
    END IF;
    SELECT s.id INTO closed FROM contributions_commissionstatement s
    WHERE s.id = ANY(ids) AND s.status <> 'draft' LIMIT 1;
    IF closed IS NOT NULL THEN
        RAISE EXCEPTION 'commission statement % is closed: % of its lines refused', closed, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("contributions", "0027_distributable_keys")]

    operations = [migrations.RunSQL(GUARD, reverse_sql=migrations.RunSQL.noop)]
