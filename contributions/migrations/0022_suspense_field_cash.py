"""Field cash in suspense (contributions/suspense.py `record_field_cash`): an agent's cash that
the participant's state refused when the offline field app synced it is held without a bill
(bill nullable), with the receipt's months and the refusal it got, and at most once per
receipt (partial unique constraint). DDL only: the table stays append-only (0010); adding the
columns writes no row (no volatile default) and existing rows already satisfy the checks."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contributions', '0021_backfill_payer_types'),
        ('enrollment', '0013_occupation_periods'),
    ]

    operations = [
        migrations.AddField(
            model_name='suspenseitem',
            name='expected',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='suspenseitem',
            name='months',
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='suspenseitem',
            name='refusal_code',
            field=models.CharField(blank=True, max_length=32),
        ),
        migrations.AddField(
            model_name='suspenseitem',
            name='refusal_message',
            field=models.TextField(blank=True),
        ),
        migrations.AlterField(
            model_name='suspenseitem',
            name='bill',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='suspense_items', to='contributions.bill'),
        ),
        migrations.AlterField(
            model_name='suspenseitem',
            name='reason',
            field=models.CharField(choices=[('amount_mismatch', 'Amount differs from the bill'), ('bill_expired', 'Bill expired'), ('bill_paid', 'Bill already paid'), ('field_conflict', 'Field cash that could not be applied')], max_length=16),
        ),
        migrations.AddConstraint(
            model_name='suspenseitem',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('bill__isnull', False), models.Q(('reason', 'field_conflict'), _negated=True)), models.Q(('bill__isnull', True), ('months__gte', 1), ('months__lte', 12), ('reason', 'field_conflict'), ('refusal_code__gt', '')), _connector='OR'), name='suspense_bill_or_field_cash'),
        ),
        migrations.AddConstraint(
            model_name='suspenseitem',
            constraint=models.UniqueConstraint(condition=models.Q(('bill__isnull', True)), fields=('participant', 'channel', 'reference'), name='suspense_field_receipt_once'),
        ),
    ]
