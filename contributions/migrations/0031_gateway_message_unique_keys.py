"""The reminders' gateway message ids already stored, claimed as unique keys (issue 21,
enrollment/unique_keys.py: `gateway_message`): on a cluster the column's own unique constraint is
dropped (a shard sees only its rows) and the claims keep the ids unique."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("contributions", "0030_bill_unique_keys"),
        ("enrollment", "0016_unique_keys"),
    ]

    operations = [
        migrations.RunSQL(
            """
            INSERT INTO enrollment_uniquekey (kind, value, participant_id)
            SELECT 'gateway_message', gateway_message_id, participant_id
            FROM contributions_reminder WHERE gateway_message_id IS NOT NULL
            """,
            reverse_sql=(
                "DELETE FROM enrollment_uniquekey WHERE kind = 'gateway_message'"
            ),
        )
    ]
