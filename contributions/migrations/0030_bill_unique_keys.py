"""Bill codes and channels' notification references already stored, claimed as unique keys
(issue 21, enrollment/unique_keys.py: `bill_code`, `notification_ref`)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("contributions", "0029_payment_unique_keys")]

    operations = [
        migrations.RunSQL(
            """
            INSERT INTO enrollment_uniquekey (kind, value, participant_id)
            SELECT 'bill_code', code, participant_id FROM contributions_bill
            UNION ALL
            SELECT 'notification_ref', client_id::text || chr(31) || reference, participant_id
            FROM contributions_billnotification
            """,
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
