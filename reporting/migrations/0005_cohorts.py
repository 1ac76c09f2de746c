# Owned by one line of work (issue 18); its operations are filled in by hand.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0004_figuresversion"),
    ]

    operations: list = [
        migrations.CreateModel(
            name="CohortRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("province_id", models.CharField(blank=True, max_length=13)),
                ("dimension", models.CharField(blank=True, max_length=12)),
                ("key", models.CharField(blank=True, max_length=32)),
                ("cohort", models.DateField()),
                ("month", models.PositiveSmallIntegerField()),
                ("participants", models.IntegerField(default=0)),
                ("active", models.IntegerField(default=0)),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["province_id", "dimension", "key", "cohort"],
                        name="cohort_rollup_cut",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="RetentionFlowRollup",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("province_id", models.CharField(blank=True, max_length=13)),
                ("dimension", models.CharField(blank=True, max_length=12)),
                ("key", models.CharField(blank=True, max_length=32)),
                ("month", models.DateField()),
                ("lapses", models.IntegerField(default=0)),
                ("reactivations", models.IntegerField(default=0)),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["province_id", "dimension", "key", "month"],
                        name="retention_flow_cut",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="CohortBuild",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("last_month", models.DateField()),
                ("built_at", models.DateTimeField()),
                ("seconds", models.FloatField(default=0)),
                ("ledger_mark", models.BigIntegerField(default=0)),
                ("participant_mark", models.BigIntegerField(default=0)),
                ("changed_mark", models.DateTimeField(null=True)),
            ],
        ),
    ]
