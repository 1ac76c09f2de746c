# NIK at rest, step 2 of 3: the digest and ciphertext of every existing NIK, in batches of
# 5,000 rows (one UPDATE each). The keys come from the environment (settings NIK_HMAC_KEY,
# NIK_ENCRYPTION_KEYS): set the production keys before migrating. Reverse: decrypt back.

from django.db import migrations

BATCH = 5000

UPDATE = """
UPDATE enrollment_participant AS p SET nik_digest = v.d, nik_encrypted = v.e
FROM unnest(%s::bigint[], %s::bytea[], %s::text[]) AS v(id, d, e) WHERE p.id = v.id
"""


def fill(apps, schema_editor):
    from enrollment import pii

    last = 0
    with schema_editor.connection.cursor() as cur:
        while True:
            cur.execute(
                "SELECT id, nik FROM enrollment_participant WHERE id > %s AND nik IS NOT NULL "
                "ORDER BY id LIMIT %s",
                [last, BATCH],
            )
            rows = cur.fetchall()
            if not rows:
                break
            ids, digests, tokens = [], [], []
            for pid, nik in rows:
                digest, token = pii.nik_columns(nik)
                ids.append(pid)
                digests.append(digest)
                tokens.append(token)
            cur.execute(UPDATE, [ids, digests, tokens])
            last = ids[-1]


def unfill(apps, schema_editor):
    from enrollment import pii

    last = 0
    with schema_editor.connection.cursor() as cur:
        while True:
            cur.execute(
                "SELECT id, nik_encrypted FROM enrollment_participant WHERE id > %s "
                "ORDER BY id LIMIT %s",
                [last, BATCH],
            )
            rows = cur.fetchall()
            if not rows:
                break
            cur.execute(
                "UPDATE enrollment_participant AS p SET nik = v.n "
                "FROM unnest(%s::bigint[], %s::text[]) AS v(id, n) WHERE p.id = v.id",
                [[r[0] for r in rows], [pii.decrypt_nik(r[1]) for r in rows]],
            )
            last = rows[-1][0]


class Migration(migrations.Migration):

    dependencies = [
        ('enrollment', '0005_nik_columns'),
    ]

    operations = [
        migrations.RunPython(fill, unfill, elidable=False),
    ]
