from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("contributions", "0024_followup"),
        ("contributions", "0024_reminder_holdout"),
        ("contributions", "0024_commissions"),
    ]

    operations: list = []
