"""Fewer indexes on enrollment_participant (issue 21): each one is maintained on every write of a
participant, and every payment writes the row (coverage_touch_participant moves its sync
position). Dropped: the LIKE (varchar_pattern_ops) indexes of the village, province, regency and
occupation codes, which are only ever compared by equality, and the single-column indexes of
province, registered_by and branch, which composite indexes start with. The plain indexes of
village, regency and occupation are kept, renamed to the names Meta.indexes gives them: nothing
is rebuilt, so the migration is quick on a 10-million-row table. 22 indexes -> 15.

The model state is what makemigrations wrote; the database side is SQL (SeparateDatabaseAndState),
because AlterField would drop the kept indexes and AddIndex build them again."""

import django.db.models.deletion
from django.db import migrations, models


T = "enrollment_participant"
FORWARD = f"""
DROP INDEX IF EXISTS {T}_village_id_4e5216cc_like;
DROP INDEX IF EXISTS {T}_province_id_a6bf1a4b_like;
DROP INDEX IF EXISTS {T}_regency_id_901acc66_like;
DROP INDEX IF EXISTS {T}_occupation_id_ed353754_like;
DROP INDEX IF EXISTS {T}_province_id_a6bf1a4b;
DROP INDEX IF EXISTS {T}_registered_by_id_3f5bf11e;
DROP INDEX IF EXISTS {T}_branch_id_0a0f57d1;
ALTER INDEX IF EXISTS {T}_village_id_4e5216cc RENAME TO participant_village_idx;
ALTER INDEX IF EXISTS {T}_regency_id_901acc66 RENAME TO participant_regency_idx;
ALTER INDEX IF EXISTS {T}_occupation_id_ed353754 RENAME TO participant_occupation_idx;
CREATE INDEX IF NOT EXISTS participant_village_idx ON {T} (village_id);
CREATE INDEX IF NOT EXISTS participant_regency_idx ON {T} (regency_id);
CREATE INDEX IF NOT EXISTS participant_occupation_idx ON {T} (occupation_id);
"""
BACKWARD = f"""
ALTER INDEX participant_village_idx RENAME TO {T}_village_id_4e5216cc;
ALTER INDEX participant_regency_idx RENAME TO {T}_regency_id_901acc66;
ALTER INDEX participant_occupation_idx RENAME TO {T}_occupation_id_ed353754;
CREATE INDEX {T}_village_id_4e5216cc_like ON {T} (village_id varchar_pattern_ops);
CREATE INDEX {T}_province_id_a6bf1a4b_like ON {T} (province_id varchar_pattern_ops);
CREATE INDEX {T}_regency_id_901acc66_like ON {T} (regency_id varchar_pattern_ops);
CREATE INDEX {T}_occupation_id_ed353754_like ON {T} (occupation_id varchar_pattern_ops);
CREATE INDEX {T}_province_id_a6bf1a4b ON {T} (province_id);
CREATE INDEX {T}_registered_by_id_3f5bf11e ON {T} (registered_by_id);
CREATE INDEX {T}_branch_id_0a0f57d1 ON {T} (branch_id);
"""

STATE = [
    migrations.AlterField(
        model_name='participant',
        name='branch',
        field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, to='enrollment.branch', verbose_name='branch office'),
    ),
    migrations.AlterField(
        model_name='participant',
        name='occupation',
        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, to='enrollment.occupation', verbose_name='occupation'),
    ),
    migrations.AlterField(
        model_name='participant',
        name='province',
        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='enrollment.region', verbose_name='province'),
    ),
    migrations.AlterField(
        model_name='participant',
        name='regency',
        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='enrollment.region', verbose_name='regency/city'),
    ),
    migrations.AlterField(
        model_name='participant',
        name='registered_by',
        field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='registrations', to='enrollment.staffprofile', verbose_name='registered by'),
    ),
    migrations.AlterField(
        model_name='participant',
        name='village',
        field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='enrollment.region', verbose_name='village'),
    ),
    migrations.AddIndex(
        model_name='participant',
        index=models.Index(fields=['village'], name='participant_village_idx'),
    ),
    migrations.AddIndex(
        model_name='participant',
        index=models.Index(fields=['regency'], name='participant_regency_idx'),
    ),
    migrations.AddIndex(
        model_name='participant',
        index=models.Index(fields=['occupation'], name='participant_occupation_idx'),
    ),
]


class Migration(migrations.Migration):

    dependencies = [
        ('enrollment', '0016_unique_keys'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=STATE,
        ),
    ]
