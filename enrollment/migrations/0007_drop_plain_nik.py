# NIK at rest, step 3 of 3: the plaintext column goes; the digest becomes the unique key (the
# duplicate guard) and both new columns are required and checked.

import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('enrollment', '0006_nik_fill'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='participant',
            name='participant_nik_16_digits',
        ),
        migrations.RemoveField(
            model_name='participant',
            name='nik',
        ),
        migrations.AlterField(
            model_name='participant',
            name='nik_digest',
            field=models.BinaryField(max_length=32, unique=True, verbose_name='NIK digest'),
        ),
        migrations.AlterField(
            model_name='participant',
            name='nik_encrypted',
            field=models.CharField(editable=False, max_length=100, verbose_name='NIK (encrypted)'),
        ),
        migrations.AddConstraint(
            model_name='participant',
            constraint=models.CheckConstraint(condition=django.db.models.lookups.Exact(django.db.models.functions.text.Length('nik_digest'), 32), name='participant_nik_digest_32_bytes'),
        ),
        migrations.AddConstraint(
            model_name='participant',
            constraint=models.CheckConstraint(condition=models.Q(('nik_encrypted__regex', '^[A-Za-z0-9_-]{1,16}:[A-Za-z0-9_-]+$')), name='participant_nik_encrypted_token'),
        ),
    ]
