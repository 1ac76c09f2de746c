from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("enrollment", "0001_initial")]

    operations = [
        migrations.RunSQL(
            # KPJ base numbers: unique, never reused (sequences do not roll back).
            "CREATE SEQUENCE IF NOT EXISTS enrollment_kpj_seq START WITH 1000000001 "
            "MINVALUE 1000000001 MAXVALUE 9999999999 NO CYCLE",
            "DROP SEQUENCE IF EXISTS enrollment_kpj_seq",
        ),
    ]
