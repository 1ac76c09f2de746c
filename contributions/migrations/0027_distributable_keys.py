"""Keys a Citus cluster accepts, on the single server too (issue 21): primary keys
(participant_id, id) on every table sharded by participant, the unique keys on a row of the same
participant with participant_id in front, and the foreign keys between those tables composite.
The statements are worked out from the catalog by bpjsportal/core/distribution.py (keys_sql); the
rules they enforce are the same as before, since every such row belongs to one participant. The
model state keeps `id` as the primary key: Django reads and writes rows by id as before."""

from typing import Any

from django.db import migrations

from bpjsportal.core import distribution


def make_distributable(apps: Any, schema_editor: Any) -> None:
    with schema_editor.connection.cursor() as cursor:
        for statement in distribution.keys_sql(distribution.read_schema(cursor)):
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("contributions", "0026_verbose_names"),
        ("enrollment", "0015_verbose_names"),
        ("audit", "0014_verbose_names"),
        ("reporting", "0006_verbose_names"),
    ]

    operations = [migrations.RunPython(make_distributable, elidable=False)]
