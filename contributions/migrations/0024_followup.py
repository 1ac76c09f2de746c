# Owned by one line of work (issue 18); its operations are filled in by hand.
"""The follow-up queue's outcomes (contributions/follow_up/models.py), append-only in the
database like the ledger: BEFORE UPDATE or DELETE raises. TRUNCATE is not guarded (the test
runner flushes tables with it; production has no path that truncates)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

GUARD = """
CREATE OR REPLACE FUNCTION contributions_followup_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'contributions_followupoutcome is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Record a later outcome instead.';
END $$;

CREATE TRIGGER contributions_followup_no_change
    BEFORE UPDATE OR DELETE ON contributions_followupoutcome
    FOR EACH ROW EXECUTE FUNCTION contributions_followup_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS contributions_followup_no_change ON contributions_followupoutcome;
DROP FUNCTION IF EXISTS contributions_followup_guard();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("contributions", "0023_suspense_field_receipt_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="FollowUpOutcome",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("paid", "Paid"),
                            ("promised", "Promised to pay by a date"),
                            ("cannot_pay", "Cannot pay now"),
                            ("moved", "Moved away"),
                            ("died", "Died"),
                            ("wrong_number", "Wrong number"),
                        ],
                        max_length=16,
                        verbose_name="outcome",
                    ),
                ),
                (
                    "promised_date",
                    models.DateField(blank=True, null=True, verbose_name="promised date"),
                ),
                ("note", models.CharField(blank=True, max_length=500, verbose_name="note")),
                ("phone", models.CharField(blank=True, max_length=16)),
                ("recorded_at", models.DateTimeField()),
                ("recorded_on", models.DateField()),
                (
                    "participant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="follow_up_outcomes",
                        to="enrollment.participant",
                    ),
                ),
                (
                    "recorded_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "follow-up outcome",
                "verbose_name_plural": "follow-up outcomes",
                "ordering": ["-id"],
                "indexes": [models.Index(fields=["recorded_on"], name="followup_recorded_on")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("participant", "id"), name="followup_participant_id"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("outcome", "promised"), ("promised_date__isnull", False)),
                            models.Q(
                                models.Q(("outcome", "promised"), _negated=True),
                                ("promised_date__isnull", True),
                            ),
                            _connector="OR",
                        ),
                        name="followup_promise_has_date",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("promised_date__isnull", True),
                            ("promised_date__gte", models.F("recorded_on")),
                            _connector="OR",
                        ),
                        name="followup_promise_not_past",
                    ),
                ],
            },
        ),
        migrations.RunSQL(GUARD, UNGUARD),
    ]
