# NIK at rest, step 1 of 3: the digest and ciphertext columns (nullable while they are filled),
# and a participant sync trigger that ignores writes of those columns alone (a key rotation
# re-encrypts every row; syncing clients see the same participant and need not fetch it again).

from django.db import migrations, models

PARTICIPANT_SYNC_TRIGGER = """
CREATE OR REPLACE FUNCTION bpu_set_participant_sync_txid() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - ARRAY['nik_digest', 'nik_encrypted', 'sync_txid'])
            = (to_jsonb(OLD) - ARRAY['nik_digest', 'nik_encrypted', 'sync_txid']) THEN
        NEW.sync_txid := OLD.sync_txid;  -- only the NIK's storage changed (key rotation)
        RETURN NEW;
    END IF;
    NEW.sync_txid := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS participant_sync_txid ON enrollment_participant;
CREATE TRIGGER participant_sync_txid BEFORE INSERT OR UPDATE ON enrollment_participant
    FOR EACH ROW EXECUTE FUNCTION bpu_set_participant_sync_txid();
"""
PARTICIPANT_SYNC_TRIGGER_REVERSE = """
DROP TRIGGER IF EXISTS participant_sync_txid ON enrollment_participant;
CREATE TRIGGER participant_sync_txid BEFORE INSERT OR UPDATE ON enrollment_participant
    FOR EACH ROW EXECUTE FUNCTION bpu_set_sync_txid();
DROP FUNCTION IF EXISTS bpu_set_participant_sync_txid();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('enrollment', '0004_api_clients_sync'),
    ]

    operations = [
        migrations.AddField(
            model_name='participant',
            name='nik_digest',
            field=models.BinaryField(max_length=32, null=True, verbose_name='NIK digest'),
        ),
        migrations.AddField(
            model_name='participant',
            name='nik_encrypted',
            field=models.CharField(editable=False, max_length=100, null=True, verbose_name='NIK (encrypted)'),
        ),
        migrations.AlterField(
            model_name='participant',
            name='nik',
            field=models.CharField(max_length=16, null=True, unique=True, verbose_name='NIK'),
        ),
        migrations.RunSQL(PARTICIPANT_SYNC_TRIGGER, PARTICIPANT_SYNC_TRIGGER_REVERSE),
    ]
