"""The schema stays distributable on the single server (bpjsportal/core/distribution.py): the
migrations leave nothing for keys_sql to do, every participant-keyed model updates by participant,
and distribute_tables refuses a database without Citus. The cluster itself: tests/citus."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection

from bpjsportal.core import distribution
from enrollment.sharding import ParticipantRow

pytestmark = pytest.mark.django_db


def _schema() -> distribution.Schema:
    with connection.cursor() as cursor:
        return distribution.read_schema(cursor)


def test_the_migrated_schema_needs_no_key_change() -> None:
    schema = _schema()
    assert distribution.keys_sql(schema) == []
    placed = distribution.colocated(schema)
    assert placed["enrollment_participant"] == "id"
    assert placed["contributions_ledgerentry"] == "participant_id"
    for table, column in placed.items():
        (pk,) = schema.of(table, "p")
        assert pk.columns[0] == column, (table, pk.columns)


def test_only_values_unique_across_participants_are_left_to_the_lookup_table() -> None:
    left = {(c.table, c.columns) for c in distribution.global_uniques(_schema())}
    assert ("enrollment_participant", ("nik_digest",)) in left
    assert ("contributions_payment", ("channel", "reference")) in left
    # a unique key on the same participant's row got participant_id in front (contributions/0027)
    assert not any(t == "contributions_ledgerentry" for t, _c in left)


def test_every_model_sharded_by_participant_updates_by_participant() -> None:
    placed = distribution.colocated(_schema())
    for model in apps.get_models():
        table = model._meta.db_table
        if placed.get(table) != "participant_id" or table.startswith("audit_"):
            continue
        if model._meta.pk.attname == "participant_id":
            continue  # keyed by the participant itself (coverage, reminder preference)
        assert issubclass(model, ParticipantRow), model


def test_every_unique_keyed_model_names_its_keys() -> None:
    """UniqueKeyed.unique_keys is abstract: each concrete model overrides it, so no insert can
    reach the base method."""
    from enrollment.sharding import UniqueKeyed

    keyed = [m for m in apps.get_models() if issubclass(m, UniqueKeyed)]
    assert len(keyed) >= 4  # participant, payment, bill, bill notification
    for model in keyed:
        assert model.unique_keys is not UniqueKeyed.unique_keys, model


def test_distribute_tables_refuses_a_database_without_citus() -> None:
    with pytest.raises(CommandError, match="no citus extension"):
        call_command("distribute_tables")
