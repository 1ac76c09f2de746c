"""Values unique across participants, claimed in a table sharded by the value (issue 21):
enrollment/unique_keys.py. The participants' NIK digests, KPJ numbers and form tokens already
stored are claimed here; contributions 0029 does the payments' channel references."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('enrollment', '0015_verbose_names'),
    ]

    operations = [
        migrations.CreateModel(
            name='UniqueKey',
            fields=[
                ('pk', models.CompositePrimaryKey('kind', 'value', blank=True, editable=False, primary_key=True, serialize=False)),
                ('kind', models.CharField(max_length=16, verbose_name='kind')),
                ('value', models.CharField(max_length=200, verbose_name='value')),
                ('participant_id', models.BigIntegerField(verbose_name='participant')),
            ],
            options={
                'verbose_name': 'unique key',
                'verbose_name_plural': 'unique keys',
            },
        ),
        migrations.RunSQL(
            """
            INSERT INTO enrollment_uniquekey (kind, value, participant_id)
            SELECT 'nik', encode(nik_digest, 'hex'), id FROM enrollment_participant
            UNION ALL
            SELECT 'kpj', kpj_number, id FROM enrollment_participant
            UNION ALL
            SELECT 'client_token', client_token::text, id FROM enrollment_participant
            WHERE client_token IS NOT NULL
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
