"""The payments' channel references already stored, claimed as unique keys (issue 21,
enrollment/unique_keys.py: `payment_ref`)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("contributions", "0028_commission_line_guard_cluster"),
        ("enrollment", "0016_unique_keys"),
    ]

    operations = [
        migrations.RunSQL(
            """
            INSERT INTO enrollment_uniquekey (kind, value, participant_id)
            SELECT 'payment_ref', channel || chr(31) || reference, participant_id
            FROM contributions_payment
            """,
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
