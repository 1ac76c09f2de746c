"""Audit events of Perisai commissions: rules, office memberships, statements (issue 18)."""

import django.db.models.deletion
import pghistory.utils
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from importlib import import_module

from django.db import migrations, models

# The same append-only triggers as every other event table (migration 0002).
_append_only = import_module("bpjsportal.audit.migrations.0002_append_only")
NEW_TABLES = [
    "audit_commissionruleevent",
    "audit_commissionstatementevent",
    "audit_perisaimembershipevent",
]


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0011_suspense_field_cash_events"),
        ("contributions", "0024_commissions"),
        ("enrollment", "0014_field_devices"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CommissionRuleEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("pgh_context", pghistory.utils.JSONField(null=True)),
                ("pgh_context_id", models.UUIDField(null=True)),
                ("id", models.BigIntegerField()),
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
                "verbose_name": "commission rule event",
                "ordering": ["-pgh_id"],
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="AuditedPerisaiMembership",
            fields=[],
            options={
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("contributions.perisaimembership",),
        ),
        migrations.CreateModel(
            name="AuditedCommissionStatement",
            fields=[],
            options={
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("contributions.commissionstatement",),
        ),
        migrations.CreateModel(
            name="AuditedCommissionRule",
            fields=[],
            options={
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("contributions.commissionrule",),
        ),
        migrations.CreateModel(
            name="CommissionStatementEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("pgh_context", pghistory.utils.JSONField(null=True)),
                ("pgh_context_id", models.UUIDField(null=True)),
                ("id", models.BigIntegerField()),
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
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        related_query_name="+",
                        to="enrollment.staffprofile",
                    ),
                ),
                (
                    "approved_by",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        related_query_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "office",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        related_query_name="+",
                        to="contributions.perisaioffice",
                    ),
                ),
                (
                    "paid_by",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        related_query_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "rule",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        related_query_name="+",
                        to="contributions.commissionrule",
                    ),
                ),
            ],
            options={
                "verbose_name": "commission statement event",
                "ordering": ["-pgh_id"],
                "abstract": False,
            },
        ),
        migrations.CreateModel(
            name="PerisaiMembershipEvent",
            fields=[
                ("pgh_id", models.AutoField(primary_key=True, serialize=False)),
                ("pgh_created_at", models.DateTimeField(auto_now_add=True)),
                ("pgh_label", models.TextField(help_text="The event label.")),
                ("pgh_context", pghistory.utils.JSONField(null=True)),
                ("pgh_context_id", models.UUIDField(null=True)),
                ("id", models.BigIntegerField()),
                ("from_month", models.DateField()),
                ("until_month", models.DateField(blank=True, null=True)),
                (
                    "agent",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        related_query_name="+",
                        to="enrollment.staffprofile",
                    ),
                ),
                (
                    "office",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        related_query_name="+",
                        to="contributions.perisaioffice",
                    ),
                ),
                (
                    "pgh_obj",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="audit.auditedperisaimembership",
                    ),
                ),
            ],
            options={
                "verbose_name": "perisai membership event",
                "ordering": ["-pgh_id"],
                "abstract": False,
            },
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditedperisaimembership",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "audit_perisaimembershipevent" ("agent_id", "from_month", "id", "office_id", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "until_month") VALUES (NEW."agent_id", NEW."from_month", NEW."id", NEW."office_id", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, clock_timestamp(), \'insert\', NEW."id", NEW."until_month"); RETURN NULL;',
                    hash="d65d52b7269053123a40e923f3913e6deb06bb84",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_1515f",
                    table="contributions_perisaimembership",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditedperisaimembership",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "audit_perisaimembershipevent" ("agent_id", "from_month", "id", "office_id", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "until_month") VALUES (NEW."agent_id", NEW."from_month", NEW."id", NEW."office_id", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, clock_timestamp(), \'update\', NEW."id", NEW."until_month"); RETURN NULL;',
                    hash="e550c05ae462c05034a26c284621c214b8484f1a",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_1b357",
                    table="contributions_perisaimembership",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditedperisaimembership",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "audit_perisaimembershipevent" ("agent_id", "from_month", "id", "office_id", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "until_month") VALUES (OLD."agent_id", OLD."from_month", OLD."id", OLD."office_id", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, clock_timestamp(), \'delete\', OLD."id", OLD."until_month"); RETURN NULL;',
                    hash="fe57b722a5ae7d496c3261161606922f70c7abf4",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_0e319",
                    table="contributions_perisaimembership",
                    when="AFTER",
                ),
            ),
        ),
        migrations.AddField(
            model_name="commissionstatementevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="audit.auditedcommissionstatement",
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditedcommissionstatement",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "audit_commissionstatementevent" ("agent_id", "approved_at", "approved_by_id", "clawback_total", "computed_at", "fee_total", "id", "incentive_total", "kind", "month", "new_participants", "office_id", "office_total", "paid_at", "paid_by_id", "payment_reference", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "qualifying", "rule_id", "status", "total") VALUES (NEW."agent_id", NEW."approved_at", NEW."approved_by_id", NEW."clawback_total", NEW."computed_at", NEW."fee_total", NEW."id", NEW."incentive_total", NEW."kind", NEW."month", NEW."new_participants", NEW."office_id", NEW."office_total", NEW."paid_at", NEW."paid_by_id", NEW."payment_reference", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, clock_timestamp(), \'insert\', NEW."id", NEW."qualifying", NEW."rule_id", NEW."status", NEW."total"); RETURN NULL;',
                    hash="6aa792f81b203b16c496d62e945bb63b749adfd7",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_2c4f6",
                    table="contributions_commissionstatement",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditedcommissionstatement",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "audit_commissionstatementevent" ("agent_id", "approved_at", "approved_by_id", "clawback_total", "computed_at", "fee_total", "id", "incentive_total", "kind", "month", "new_participants", "office_id", "office_total", "paid_at", "paid_by_id", "payment_reference", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "qualifying", "rule_id", "status", "total") VALUES (NEW."agent_id", NEW."approved_at", NEW."approved_by_id", NEW."clawback_total", NEW."computed_at", NEW."fee_total", NEW."id", NEW."incentive_total", NEW."kind", NEW."month", NEW."new_participants", NEW."office_id", NEW."office_total", NEW."paid_at", NEW."paid_by_id", NEW."payment_reference", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, clock_timestamp(), \'update\', NEW."id", NEW."qualifying", NEW."rule_id", NEW."status", NEW."total"); RETURN NULL;',
                    hash="85a6e4f00ffe17c6b41cd6bece3edaefe89a0568",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_019bc",
                    table="contributions_commissionstatement",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditedcommissionstatement",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "audit_commissionstatementevent" ("agent_id", "approved_at", "approved_by_id", "clawback_total", "computed_at", "fee_total", "id", "incentive_total", "kind", "month", "new_participants", "office_id", "office_total", "paid_at", "paid_by_id", "payment_reference", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "qualifying", "rule_id", "status", "total") VALUES (OLD."agent_id", OLD."approved_at", OLD."approved_by_id", OLD."clawback_total", OLD."computed_at", OLD."fee_total", OLD."id", OLD."incentive_total", OLD."kind", OLD."month", OLD."new_participants", OLD."office_id", OLD."office_total", OLD."paid_at", OLD."paid_by_id", OLD."payment_reference", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, clock_timestamp(), \'delete\', OLD."id", OLD."qualifying", OLD."rule_id", OLD."status", OLD."total"); RETURN NULL;',
                    hash="f21301d7f6ca1de80b4f50f3912962e7d9894f2d",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_15768",
                    table="contributions_commissionstatement",
                    when="AFTER",
                ),
            ),
        ),
        migrations.AddField(
            model_name="commissionruleevent",
            name="pgh_obj",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="audit.auditedcommissionrule",
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditedcommissionrule",
            trigger=pgtrigger.compiler.Trigger(
                name="insert_insert",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "audit_commissionruleevent" ("band1_last_month", "band1_rate_bp", "band2_last_month", "band2_rate_bp", "effective_from", "effective_to", "fee_jkk_jkm", "fee_with_jht", "id", "min_new_niks", "name", "office_share_bp", "pay_by_day", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "source", "source_url", "verification") VALUES (NEW."band1_last_month", NEW."band1_rate_bp", NEW."band2_last_month", NEW."band2_rate_bp", NEW."effective_from", NEW."effective_to", NEW."fee_jkk_jkm", NEW."fee_with_jht", NEW."id", NEW."min_new_niks", NEW."name", NEW."office_share_bp", NEW."pay_by_day", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, clock_timestamp(), \'insert\', NEW."id", NEW."source", NEW."source_url", NEW."verification"); RETURN NULL;',
                    hash="75e4311f38c0658d34ad742693a30726b749eaa2",
                    operation="INSERT",
                    pgid="pgtrigger_insert_insert_aafb4",
                    table="contributions_commissionrule",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditedcommissionrule",
            trigger=pgtrigger.compiler.Trigger(
                name="update_update",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    condition="WHEN (OLD.* IS DISTINCT FROM NEW.*)",
                    func='INSERT INTO "audit_commissionruleevent" ("band1_last_month", "band1_rate_bp", "band2_last_month", "band2_rate_bp", "effective_from", "effective_to", "fee_jkk_jkm", "fee_with_jht", "id", "min_new_niks", "name", "office_share_bp", "pay_by_day", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "source", "source_url", "verification") VALUES (NEW."band1_last_month", NEW."band1_rate_bp", NEW."band2_last_month", NEW."band2_rate_bp", NEW."effective_from", NEW."effective_to", NEW."fee_jkk_jkm", NEW."fee_with_jht", NEW."id", NEW."min_new_niks", NEW."name", NEW."office_share_bp", NEW."pay_by_day", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, clock_timestamp(), \'update\', NEW."id", NEW."source", NEW."source_url", NEW."verification"); RETURN NULL;',
                    hash="7d29e75ed2b59d793c6035c6cf528df72293b191",
                    operation="UPDATE",
                    pgid="pgtrigger_update_update_e1ca4",
                    table="contributions_commissionrule",
                    when="AFTER",
                ),
            ),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="auditedcommissionrule",
            trigger=pgtrigger.compiler.Trigger(
                name="delete_delete",
                sql=pgtrigger.compiler.UpsertTriggerSql(
                    func='INSERT INTO "audit_commissionruleevent" ("band1_last_month", "band1_rate_bp", "band2_last_month", "band2_rate_bp", "effective_from", "effective_to", "fee_jkk_jkm", "fee_with_jht", "id", "min_new_niks", "name", "office_share_bp", "pay_by_day", "pgh_context", "pgh_context_id", "pgh_created_at", "pgh_label", "pgh_obj_id", "source", "source_url", "verification") VALUES (OLD."band1_last_month", OLD."band1_rate_bp", OLD."band2_last_month", OLD."band2_rate_bp", OLD."effective_from", OLD."effective_to", OLD."fee_jkk_jkm", OLD."fee_with_jht", OLD."id", OLD."min_new_niks", OLD."name", OLD."office_share_bp", OLD."pay_by_day", COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_metadata\', TRUE), \'\'), NULL)::JSONB, COALESCE(NULLIF(CURRENT_SETTING(\'pghistory.context_id\', TRUE), \'\'), NULL)::UUID, clock_timestamp(), \'delete\', OLD."id", OLD."source", OLD."source_url", OLD."verification"); RETURN NULL;',
                    hash="ee50b1a92e418b232b6355c51a5eeef340f2ed4c",
                    operation="DELETE",
                    pgid="pgtrigger_delete_delete_3bfd6",
                    table="contributions_commissionrule",
                    when="AFTER",
                ),
            ),
        ),
        migrations.RunSQL(
            "".join(_append_only.guard(t) for t in NEW_TABLES),
            "".join(_append_only.unguard(t) for t in NEW_TABLES),
        ),
    ]
