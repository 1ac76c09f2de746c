# Owned by one line of work (issue 18); its operations are filled in by hand.
# Reminder holdout and uplift: ReminderRule.holdout_percent and the recorded arms
# (contributions/messaging/uplift.py; docs/reminders.md "Holdout and uplift").
import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contributions", "0023_suspense_field_receipt_index"),
        ("enrollment", "0014_field_devices"),
    ]

    operations = [
        migrations.AddField(
            model_name="reminderrule",
            name="holdout_percent",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="Percent of eligible participants who are not reminded, to measure "
                "whether the reminder works (0 = everyone is reminded; at most 50).",
                validators=[
                    django.core.validators.MinValueValidator(
                        0, "The holdout must be between 0 and 50 percent."
                    ),
                    django.core.validators.MaxValueValidator(
                        50, "The holdout must be between 0 and 50 percent."
                    ),
                ],
                verbose_name="holdout (%)",
            ),
        ),
        migrations.AddConstraint(
            model_name="reminderrule",
            constraint=models.CheckConstraint(
                condition=models.Q(("holdout_percent__gte", 0), ("holdout_percent__lte", 50)),
                name="reminder_rule_holdout_range",
            ),
        ),
        migrations.CreateModel(
            name="ReminderAssignment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("period", models.DateField()),
                ("held_out", models.BooleanField()),
                ("holdout_percent", models.PositiveSmallIntegerField()),
                ("assigned_on", models.DateField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "participant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reminder_assignments",
                        to="enrollment.participant",
                    ),
                ),
                (
                    "rule",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="assignments",
                        to="contributions.reminderrule",
                    ),
                ),
            ],
            options={"ordering": ["-assigned_on", "participant_id"]},
        ),
        migrations.AddIndex(
            model_name="reminderassignment",
            index=models.Index(fields=["rule", "period"], name="reminder_assignment_rule_month"),
        ),
        migrations.AddConstraint(
            model_name="reminderassignment",
            constraint=models.UniqueConstraint(
                fields=("participant", "rule", "period"), name="reminder_assignment_once"
            ),
        ),
        migrations.AddConstraint(
            model_name="reminderassignment",
            constraint=models.CheckConstraint(
                condition=models.Q(("period__day", 1)),
                name="reminder_assignment_period_first_day",
            ),
        ),
    ]
