"""Perisai commissions (issue 18): rules as dated data, Perisai offices and their members, NIKs
known from before, monthly statements and their lines.

Database guards (like the ledger's, migration 0003):
- a statement that is approved or paid refuses DELETE and every UPDATE but the one step
  approved -> paid (status, paid_at, paid_by, payment_reference and nothing else);
- a line refuses UPDATE always, and INSERT/DELETE unless its statement is a draft.
TRUNCATE is not guarded (the test runner flushes tables with it).

The seeded rule: Perdir 13/PERDIR.02/042022 as quoted in BPJS Ketenagakerjaan's "908 - Probis
Kepesertaan" p. 67 (http://online.flipbuilder.com/kduhm/fxda/files/basic-html/page67.html);
the Rp15,000 fee for JKK + JKM + JHT from the "Sosialisasi New Perisai" deck (Deputi Direktur
Bidang Kepesertaan Program Khusus, April 2022, on scribd) and a Kantor Perisai's own page
(perisai.sdsi.co.id): docs/contributions.md says what is verified.
"""

import datetime

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

GUARD = """
CREATE OR REPLACE FUNCTION contributions_commission_statement_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    paid_fields text[] := ARRAY['status', 'paid_at', 'paid_by_id', 'payment_reference'];
BEGIN
    IF OLD.status = 'draft' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = 'approved' AND NEW.status = 'paid'
       AND (to_jsonb(OLD) - paid_fields) = (to_jsonb(NEW) - paid_fields) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'commission statement % is %: % refused', OLD.id, OLD.status, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'An approved statement is never changed: a correction goes into a later month.';
END $$;

CREATE TRIGGER contributions_commission_statement_frozen
    BEFORE UPDATE OR DELETE ON contributions_commissionstatement
    FOR EACH ROW EXECUTE FUNCTION contributions_commission_statement_guard();

CREATE OR REPLACE FUNCTION contributions_commission_line_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    closed bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'commission lines are never updated'
            USING ERRCODE = 'integrity_constraint_violation';
    ELSIF TG_OP = 'INSERT' THEN
        SELECT s.id INTO closed FROM contributions_commissionstatement s
        WHERE s.id IN (SELECT statement_id FROM new_lines) AND s.status <> 'draft' LIMIT 1;
    ELSE
        SELECT s.id INTO closed FROM contributions_commissionstatement s
        WHERE s.id IN (SELECT statement_id FROM old_lines) AND s.status <> 'draft' LIMIT 1;
    END IF;
    IF closed IS NOT NULL THEN
        RAISE EXCEPTION 'commission statement % is closed: % of its lines refused', closed, TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;

-- per statement (one check for a whole month's lines), with the rows as transition tables
CREATE TRIGGER contributions_commission_line_insert
    AFTER INSERT ON contributions_commissionline REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION contributions_commission_line_guard();
CREATE TRIGGER contributions_commission_line_delete
    AFTER DELETE ON contributions_commissionline REFERENCING OLD TABLE AS old_lines
    FOR EACH STATEMENT EXECUTE FUNCTION contributions_commission_line_guard();
CREATE TRIGGER contributions_commission_line_update
    BEFORE UPDATE ON contributions_commissionline
    FOR EACH ROW EXECUTE FUNCTION contributions_commission_line_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS contributions_commission_line_update ON contributions_commissionline;
DROP TRIGGER IF EXISTS contributions_commission_line_delete ON contributions_commissionline;
DROP TRIGGER IF EXISTS contributions_commission_line_insert ON contributions_commissionline;
DROP TRIGGER IF EXISTS contributions_commission_statement_frozen
    ON contributions_commissionstatement;
DROP FUNCTION IF EXISTS contributions_commission_line_guard();
DROP FUNCTION IF EXISTS contributions_commission_statement_guard();
"""

SOURCE = (
    "Perdir BPJS Ketenagakerjaan 13/PERDIR.02/042022 (insentif Perisai), as quoted in "
    '"908 - Probis Kepesertaan" p. 67: Rp10.000 per new participant of JKK and JKM; 15% of '
    "contributions received for membership months 1-24, 5% for months 25-60 (counted from the "
    "acquisition by the Perisai); Kantor Perisai 10% of its Perisai's incentive; the acquisition "
    "fee only with at least 25 new participants a month whose NIK was never registered in the BPU "
    'segment; paid by the 5th of the next month. Rp15.000 for JKK+JKM+JHT: "Sosialisasi New '
    'Perisai" (April 2022) and perisai.sdsi.co.id.'
)
VERIFICATION = (
    "Verified against the quoted text (p. 67): JKK+JKM fee, minimum 25 new NIKs, 15%/5% bands, "
    "office 10%, paid by the 5th. Less verified (secondary sources only, the page before p. 67 "
    "was not seen): the Rp15.000 JKK+JKM+JHT fee. Not found: the Perdir's own text."
)


def seed_rule(apps, schema_editor):
    Rule = apps.get_model("contributions", "CommissionRule")
    Rule.objects.get_or_create(
        effective_from=datetime.date(2022, 4, 1),
        defaults={
            "name": "Perdir 13/PERDIR.02/042022",
            "fee_jkk_jkm": 10_000,
            "fee_with_jht": 15_000,
            "min_new_niks": 25,
            "band1_last_month": 24,
            "band1_rate_bp": 1_500,
            "band2_last_month": 60,
            "band2_rate_bp": 500,
            "office_share_bp": 1_000,
            "pay_by_day": 5,
            "source": SOURCE,
            "source_url": "http://online.flipbuilder.com/kduhm/fxda/files/basic-html/page67.html",
            "verification": VERIFICATION,
        },
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contributions", "0023_suspense_field_receipt_index"),
        ("enrollment", "0014_field_devices"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="PriorBpuNik",
            fields=[
                (
                    "nik_digest",
                    models.BinaryField(max_length=32, primary_key=True, serialize=False),
                ),
                ("first_registered_on", models.DateField()),
                ("source", models.CharField(max_length=60)),
                ("loaded_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name": "prior BPU NIK",
            },
        ),
        migrations.CreateModel(
            name="CommissionRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=120)),
                ("effective_from", models.DateField()),
                ("effective_to", models.DateField(blank=True, null=True)),
                ("fee_jkk_jkm", models.BigIntegerField()),
                ("fee_with_jht", models.BigIntegerField()),
                ("min_new_niks", models.PositiveIntegerField()),
                ("band1_last_month", models.PositiveSmallIntegerField()),
                ("band1_rate_bp", models.PositiveIntegerField()),
                ("band2_last_month", models.PositiveSmallIntegerField()),
                ("band2_rate_bp", models.PositiveIntegerField()),
                ("office_share_bp", models.PositiveIntegerField()),
                ("pay_by_day", models.PositiveSmallIntegerField(default=5)),
                ("source", models.TextField()),
                ("source_url", models.URLField(blank=True, max_length=300)),
                ("verification", models.TextField(blank=True)),
            ],
            options={
                "ordering": ["-effective_from"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("effective_from__day", 1)),
                        name="commission_rule_from_first_day",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("effective_to__isnull", True),
                            ("effective_to__day", 1),
                            _connector="OR",
                        ),
                        name="commission_rule_to_first_day",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("band1_last_month__lt", models.F("band2_last_month"))),
                        name="commission_rule_bands_ordered",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("band1_rate_bp__lte", 10000),
                            ("band2_rate_bp__lte", 10000),
                            ("office_share_bp__lte", 10000),
                        ),
                        name="commission_rule_rates_at_most_100pct",
                    ),
                    models.UniqueConstraint(
                        fields=("effective_from",), name="commission_rule_from_once"
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="PerisaiOffice",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.CharField(max_length=20, unique=True)),
                ("name", models.CharField(max_length=120)),
                (
                    "branch",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="perisai_offices",
                        to="enrollment.branch",
                    ),
                ),
            ],
            options={
                "ordering": ["code"],
            },
        ),
        migrations.CreateModel(
            name="CommissionStatement",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("agent", "Agent"), ("office", "Perisai office")], max_length=6
                    ),
                ),
                ("month", models.DateField()),
                (
                    "status",
                    models.CharField(
                        choices=[("draft", "Draft"), ("approved", "Approved"), ("paid", "Paid")],
                        default="draft",
                        max_length=8,
                    ),
                ),
                ("new_participants", models.PositiveIntegerField(default=0)),
                ("qualifying", models.PositiveIntegerField(default=0)),
                ("fee_total", models.BigIntegerField(default=0)),
                ("incentive_total", models.BigIntegerField(default=0)),
                ("clawback_total", models.BigIntegerField(default=0)),
                ("office_total", models.BigIntegerField(default=0)),
                ("total", models.BigIntegerField(default=0)),
                ("computed_at", models.DateTimeField()),
                ("approved_at", models.DateTimeField(blank=True, null=True)),
                ("paid_at", models.DateTimeField(blank=True, null=True)),
                ("payment_reference", models.CharField(blank=True, max_length=64)),
                (
                    "agent",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="commission_statements",
                        to="enrollment.staffprofile",
                    ),
                ),
                (
                    "approved_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "paid_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "rule",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="contributions.commissionrule",
                    ),
                ),
                (
                    "office",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="statements",
                        to="contributions.perisaioffice",
                    ),
                ),
            ],
            options={
                "ordering": ["-month", "kind", "id"],
            },
        ),
        migrations.CreateModel(
            name="CommissionLine",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("fee", "Acquisition fee"),
                            ("incentive", "Contribution incentive"),
                            ("clawback", "Clawback of a reversed payment"),
                            ("office_share", "Office share"),
                        ],
                        max_length=12,
                    ),
                ),
                ("covered_from", models.DateField(blank=True, null=True)),
                ("months", models.PositiveSmallIntegerField(default=0)),
                ("membership_from", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("membership_to", models.PositiveSmallIntegerField(blank=True, null=True)),
                ("base", models.BigIntegerField(default=0)),
                ("rate_bp", models.PositiveIntegerField(default=0)),
                ("amount", models.BigIntegerField()),
                ("note", models.CharField(max_length=20)),
                (
                    "ledger_entry",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="contributions.ledgerentry",
                    ),
                ),
                (
                    "participant",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="enrollment.participant",
                    ),
                ),
                (
                    "source_statement",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="contributions.commissionstatement",
                    ),
                ),
                (
                    "statement",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="lines",
                        to="contributions.commissionstatement",
                    ),
                ),
            ],
            options={
                "ordering": ["statement", "kind", "id"],
                "indexes": [
                    models.Index(fields=["statement", "kind"], name="commission_line_statement"),
                    models.Index(
                        condition=models.Q(("kind", "incentive")),
                        fields=["ledger_entry"],
                        name="commission_line_entry",
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("participant", "id"), name="commission_line_pid_id"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="PerisaiMembership",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("from_month", models.DateField()),
                ("until_month", models.DateField(blank=True, null=True)),
                (
                    "agent",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="perisai_memberships",
                        to="enrollment.staffprofile",
                    ),
                ),
                (
                    "office",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="members",
                        to="contributions.perisaioffice",
                    ),
                ),
            ],
            options={
                "ordering": ["agent", "-from_month"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("agent", "from_month"), name="perisai_member_once"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            ("from_month__day", 1),
                            models.Q(
                                ("until_month__isnull", True),
                                ("until_month__gt", models.F("from_month")),
                                _connector="OR",
                            ),
                        ),
                        name="perisai_member_months",
                    ),
                ],
            },
        ),
        migrations.AddIndex(
            model_name="commissionstatement",
            index=models.Index(fields=["month", "status"], name="commission_month_status"),
        ),
        migrations.AddConstraint(
            model_name="commissionstatement",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "agent")),
                fields=("agent", "month"),
                name="commission_agent_month_once",
            ),
        ),
        migrations.AddConstraint(
            model_name="commissionstatement",
            constraint=models.UniqueConstraint(
                condition=models.Q(("kind", "office")),
                fields=("office", "month"),
                name="commission_office_month_once",
            ),
        ),
        migrations.AddConstraint(
            model_name="commissionstatement",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("agent__isnull", False), ("kind", "agent"), ("office__isnull", True)),
                    models.Q(
                        ("agent__isnull", True), ("kind", "office"), ("office__isnull", False)
                    ),
                    _connector="OR",
                ),
                name="commission_statement_owner",
            ),
        ),
        migrations.AddConstraint(
            model_name="commissionstatement",
            constraint=models.CheckConstraint(
                condition=models.Q(("month__day", 1)), name="commission_month_first_day"
            ),
        ),
        migrations.AddConstraint(
            model_name="commissionstatement",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("status", "draft"),
                    models.Q(("approved_at__isnull", False), ("approved_by__isnull", False)),
                    _connector="OR",
                ),
                name="commission_approved_by_whom",
            ),
        ),
        migrations.AddConstraint(
            model_name="commissionstatement",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "paid"), _negated=True),
                    models.Q(("paid_at__isnull", False), ("paid_by__isnull", False)),
                    _connector="OR",
                ),
                name="commission_paid_by_whom",
            ),
        ),
        migrations.RunSQL(GUARD, UNGUARD),
        migrations.RunPython(seed_rule, migrations.RunPython.noop),
    ]
