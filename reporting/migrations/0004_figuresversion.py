from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0003_province_rollup"),
    ]

    operations = [
        migrations.CreateModel(
            name="FiguresVersion",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("number", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunSQL(
            "INSERT INTO reporting_figuresversion (id, number) VALUES (1, 0)",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
