"""The audit trail (bpjsportal/audit): database triggers record who, when, from where and what
changed — through the ORM in a request, the API with a token, raw SQL, bulk paths, Celery tasks
and commands — into append-only tables, shown on the admin's History page."""

from __future__ import annotations

from typing import Any

import pytest
from celery import shared_task
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone, translation

from bpjsportal.audit.models import (
    ApiClientEvent,
    LedgerEntryEvent,
    ParticipantEvent,
    PaymentEvent,
    RateScheduleEvent,
    StaffProfileEvent,
    TargetEvent,
    UserEvent,
    UserGroupEvent,
)
from bpjsportal.audit.selectors import event_models, history_for, participant_history
from bpjsportal.core.audit_context import labelled, set_local
from contributions.models import LedgerEntry, Payment
from enrollment.models import Participant, StaffProfile
from tests.api.conftest import Caller, next_nik, reg_body
from tests.conftest import login_as, nik_for, password_login

pytestmark = pytest.mark.django_db


def events(model: Any, obj_id: Any) -> list[Any]:
    return list(model.objects.filter(pgh_obj_id=obj_id).order_by("pgh_id"))


# --- who / where --------------------------------------------------------------------------
def test_admin_edit_in_a_request_records_user_ip_url_and_the_diff(
    admin_user: Any, agent: Any, branches: dict[str, Any]
) -> None:
    http = Client(REMOTE_ADDR="203.0.113.7")
    login_as(http, admin_user)
    staff = agent.staff
    url = f"/admin/enrollment/staffprofile/{staff.pk}/change/"
    r = http.post(
        url,
        {
            "user": agent.pk,
            "role": "supervisor",
            "branch": branches["BDG"].pk,
            "province": "",
            "agent_code": staff.agent_code,
            "phone": "",
        },
    )
    assert r.status_code == 302, r.content[:2000]
    last = events(StaffProfileEvent, staff.pk)[-1]
    assert last.pgh_label == "update" and last.role == "supervisor"
    ctx = last.pgh_context
    assert ctx["user"] == admin_user.pk and ctx["username"] == "boss"
    assert ctx["ip"] == "203.0.113.7" and ctx["url"] == url and ctx["method"] == "POST"
    entry = history_for(staff)[0]
    assert [(c.field, c.old, c.new) for c in entry.changes] == [("role", "agent", "supervisor")]
    assert "boss" in entry.actor and "203.0.113.7" in entry.where


def test_api_registration_and_update_record_the_api_client(admin_api: Caller) -> None:
    r = admin_api.post("/api/v1/participants/", reg_body(nik=next_nik()))
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    r = admin_api.patch(f"/api/v1/participants/{pk}/", {"address": "Jl. Mawar No. 9"})
    assert r.status_code == 200, r.content
    insert, update = events(ParticipantEvent, pk)
    assert (insert.pgh_label, update.pgh_label) == ("insert", "update")
    for event in (insert, update):
        assert event.pgh_context["api_client"] == admin_api.client.pk
        assert event.pgh_context["api_client_name"] == admin_api.client.name
        assert event.pgh_context["user"] is None
        assert event.pgh_context["ip"] == "127.0.0.1"
    assert update.address == "Jl. Mawar No. 9"
    with translation.override("en"):
        entry = history_for(Participant.objects.get(pk=pk))[0]
        assert [c.field for c in entry.changes] == ["address"]
        assert "API client" in str(entry.actor)


# --- paths around the ORM -----------------------------------------------------------------
def test_raw_sql_update_is_recorded_with_and_without_application_context(register: Any) -> None:
    p = register()
    with labelled(command="fix_addresses", os_user="ops"), connection.cursor() as cur:
        cur.execute(
            "UPDATE enrollment_participant SET address = %s WHERE id = %s", ["Jl. Raw 1", p.pk]
        )
    # Outside any context (psql, another program): still recorded, with no context. The test
    # runs in one transaction, so clear the transaction-local context as a new session has it
    # (on a cluster, on the workers too).
    with connection.cursor() as cur:
        set_local(cur, "pghistory.context_id", "")
        set_local(cur, "pghistory.context_metadata", "")
        cur.execute("UPDATE enrollment_participant SET address = 'Jl. Raw 2' WHERE id = %s", [p.pk])
    # A no-op write and a sync_txid/updated_at-only change record nothing.
    with connection.cursor() as cur:
        cur.execute("UPDATE enrollment_participant SET updated_at = now() WHERE id = %s", [p.pk])
    insert, first, second = events(ParticipantEvent, p.pk)
    assert insert.pgh_label == "insert"
    assert (first.address, first.pgh_context) == (
        "Jl. Raw 1",
        {"command": "fix_addresses", "os_user": "ops"},
    )
    assert (second.address, second.pgh_context) == ("Jl. Raw 2", None)
    with translation.override("en"):
        assert "without application context" in history_for(p)[0].actor


def _sets_context(sql: str) -> bool:
    """The context prefix: set_config on one server, audit_set_local on a Citus cluster."""
    return "set_config('pghistory" in sql or "audit_set_local('pghistory" in sql


def test_savepoints_carry_no_context_and_writes_inside_them_keep_it(register: Any) -> None:
    """Savepoints fire no trigger: they go without the context prefix (a payment's transaction
    has three or four pairs), and a write inside one is still recorded with its context."""
    from django.test.utils import CaptureQueriesContext

    p = register()
    with (
        labelled(command="fix_addresses", os_user="ops"),
        CaptureQueriesContext(connection) as ctx,
        transaction.atomic(),  # a savepoint: the test runs in a transaction
    ):
        Participant.objects.filter(pk=p.pk).update(address="Jl. Savepoint 1")
    statements = [q["sql"] for q in ctx.captured_queries]
    assert any(s.startswith("SAVEPOINT") for s in statements), statements
    assert not any(_sets_context(s) and "SAVEPOINT" in s for s in statements)
    assert any(_sets_context(s) for s in statements if "UPDATE" in s)
    last = events(ParticipantEvent, p.pk)[-1]
    assert (last.address, last.pgh_context) == (
        "Jl. Savepoint 1",
        {"command": "fix_addresses", "os_user": "ops"},
    )


# participants written with raw SQL in a session of their own (unique values no other test uses)
_OWN_SESSION_INSERT = """
INSERT INTO enrollment_participant (nik_digest, nik_encrypted, kpj_number, full_name, birth_date,
    sex, phone, email, language, village_id, province_id, regency_id, address, occupation_id,
    declared_income, jht, channel, consent_data, consent_reminders, created_at, updated_at)
SELECT sha256(('released-savepoint-' || g)::bytea), 'placeholder:' || g,
       '98765' || lpad(g::text, 6, '0'), 'X', DATE '1990-01-01', 'M', '+6281200000000', '', 'id',
       v.code, r.parent_id, d.parent_id, 'Jl', 'petani', 1000000, false, 'self', true, false,
       now(), now()
FROM generate_series(%s::int, %s::int) g, enrollment_region v
JOIN enrollment_region d ON d.code = v.parent_id JOIN enrollment_region r ON r.code = d.parent_id
WHERE v.code = %s
"""


def test_context_is_kept_after_a_released_savepoint(refdata: Any) -> None:
    """On a Citus cluster the context is a SET LOCAL that Citus forwards to the workers; Citus
    forgets the SETs made in a savepoint once it is released, so a worker connection opened
    after the RELEASE would start without them: the first write after a RELEASE sets the context
    again. The connections must be new: a session of its own, not the test's transaction (which
    has reached every worker already)."""
    import pghistory.runtime
    from django.db import connections

    from tests.conftest import VILLAGE

    own = connections.create_connection("default")
    try:
        own.set_autocommit(False)
        with (
            labelled(command="released_savepoint"),
            own.execute_wrapper(pghistory.runtime._inject_history_context),
        ):
            saved = own.savepoint()
            with own.cursor() as cur:  # one row: one worker
                cur.execute(_OWN_SESSION_INSERT, [1, 1, VILLAGE])
            own.savepoint_commit(saved)  # RELEASE SAVEPOINT
            with own.cursor() as cur:  # eight rows: every shard, so the other worker too
                cur.execute(_OWN_SESSION_INSERT, [2, 9, VILLAGE])
        with own.cursor() as cur:
            cur.execute(
                "SELECT pgh_context->>'command' FROM audit_participantevent"
                " WHERE kpj_number LIKE '98765%%' AND pgh_label = 'insert'"
            )
            commands = [row[0] for row in cur.fetchall()]
    finally:
        own.rollback()
        own.close()
    assert commands == ["released_savepoint"] * 9


def test_queryset_update_records_one_event_per_row(register: Any) -> None:
    a, b = register(), register(nik=nik_for(serial=2), phone="081234567891")
    with labelled(task="bulk.consent", task_id="t-1"):
        n = Participant.objects.filter(pk__in=[a.pk, b.pk]).update(consent_reminders=True)
    assert n == 2
    for p in (a, b):
        last = events(ParticipantEvent, p.pk)[-1]
        assert last.consent_reminders is True
        assert last.pgh_context == {"task": "bulk.consent", "task_id": "t-1"}


def test_sponsor_batch_bulk_path_records_payments_and_ledger_with_the_client(
    sponsor_api: Caller, admin_api: Caller
) -> None:
    """bulk_create of payments and ledger rows and the executemany of coverage in one request."""
    people = [sponsor_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()]
    second = reg_body(nik=next_nik(), phone="081234567891")
    people.append(sponsor_api.post("/api/v1/participants/", second).json())
    body = {
        "reference": "GNL-AUDIT-1",
        "paid_at": timezone.now().isoformat(),
        "rows": [{"kpj_number": p["kpj_number"], "months": 1} for p in people],
    }
    r = sponsor_api.post("/api/v1/payments/batches/", body)
    assert r.status_code == 201, r.content
    ids = [p["id"] for p in people]
    payments = list(PaymentEvent.objects.filter(participant_id__in=ids))
    ledger = list(LedgerEntryEvent.objects.filter(participant_id__in=ids))
    assert len(payments) == 2 and len(ledger) == 2
    for event in [*payments, *ledger]:
        assert event.pgh_label == "insert"
        assert event.pgh_context["api_client"] == sponsor_api.client.pk
        assert event.pgh_context["url"] == "/api/v1/payments/batches/"
    assert {e.kind for e in ledger} == {"payment"}


def test_copy_with_bound_context_is_recorded(refdata: Any) -> None:
    """COPY goes around Django's execute wrapper; bind_to_transaction sets the context first."""
    from bpjsportal.core.audit_context import bind_to_transaction

    with labelled(command="load_targets"), transaction.atomic(), connection.cursor() as cur:
        bind_to_transaction(cur)
        with cur.cursor.copy(
            "COPY reporting_target (year, active_target, note, updated_at) FROM STDIN"
        ) as copy:
            copy.write_row((2031, 5_000_000, "copied", timezone.now()))
    event = TargetEvent.objects.get(year=2031)
    assert event.pgh_label == "insert" and event.pgh_context == {"command": "load_targets"}


@shared_task(name="tests.audit.rename_participant")
def rename_participant(pk: int) -> None:
    Participant.objects.filter(pk=pk).update(full_name="Budi Task")


def test_celery_task_labels_its_changes(register: Any) -> None:
    p = register()
    result = rename_participant.apply(args=[p.pk])
    assert result.successful()
    last = events(ParticipantEvent, p.pk)[-1]
    assert last.full_name == "Budi Task"
    assert last.pgh_context["task"] == "tests.audit.rename_participant"
    assert last.pgh_context["task_id"] == result.id


def test_management_command_context(refdata: Any) -> None:
    from bpjsportal.core.audit_context import command_context

    with command_context(["manage.py", "create_api_client", "x"]):
        call_command("create_api_client", "Audit client", "--scope", "admin", stdout=_Sink())
    event = ApiClientEvent.objects.get(name="Audit client")
    assert event.pgh_context["command"] == "create_api_client"
    assert event.pgh_context["os_user"]
    assert not hasattr(event, "token_hash")  # the token hash is never copied


class _Sink:
    def write(self, _text: str) -> None:
        pass

    def flush(self) -> None:
        pass


# --- roles, rates, secrets ----------------------------------------------------------------
def test_user_roles_groups_and_staff_flag_are_recorded(admin_user: Any, agent: Any) -> None:
    group = Group.objects.create(name="auditors")
    with labelled(user=admin_user.pk, username="boss"):
        agent.groups.add(group)
        agent.is_staff = True
        agent.save()
        agent.groups.remove(group)
    added, removed = UserGroupEvent.objects.filter(user_id=agent.pk).order_by("pgh_id")
    assert (added.pgh_label, removed.pgh_label) == ("group.add", "group.remove")
    assert added.group_id == group.pk and added.pgh_context["username"] == "boss"
    last = events(UserEvent, agent.pk)[-1]
    assert last.is_staff is True and last.pgh_context["user"] == admin_user.pk
    labels = [e.label for e in history_for(User.objects.get(pk=agent.pk))]
    assert labels[:3] == ["group.remove", "update", "group.add"]


def test_password_and_nik_are_never_copied_but_their_change_is_recorded(
    agent: Any, register: Any
) -> None:
    assert "password" not in {f.name for f in UserEvent._meta.fields}
    assert not {"nik", "nik_digest", "nik_encrypted"} & {
        f.name for f in ParticipantEvent._meta.fields
    }
    before = UserEvent.objects.filter(pgh_obj_id=agent.pk).count()
    agent.set_password("another-pass-2024-xyz")
    agent.save()
    assert UserEvent.objects.filter(pgh_obj_id=agent.pk).count() == before + 1
    assert history_for(agent)[0].hidden_change
    # A login only moves last_login: nothing recorded.
    assert password_login(Client(), agent, "another-pass-2024-xyz")
    assert UserEvent.objects.filter(pgh_obj_id=agent.pk).count() == before + 1


def test_rate_schedule_and_target_changes_are_recorded(refdata: Any) -> None:
    from contributions.models import RateSchedule
    from reporting.models import Target

    schedule = RateSchedule.objects.order_by("effective_from").first()
    assert schedule is not None
    schedule.source = schedule.source + " (checked)"
    schedule.save()
    assert events(RateScheduleEvent, schedule.pk)[-1].source.endswith("(checked)")
    target = Target.objects.create(year=2032, active_target=1000)
    target.active_target = 2000
    target.save()
    pk = target.pk
    target.delete()
    assert [e.pgh_label for e in events(TargetEvent, pk)] == ["insert", "update", "delete"]


# --- append-only --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_participantevent SET address = 'forged'",
        "DELETE FROM audit_participantevent",
        "TRUNCATE audit_participantevent",
    ],
)
def test_the_audit_tables_refuse_update_delete_and_truncate(register: Any, sql: str) -> None:
    register()
    with connection.cursor() as cur:
        cur.execute("RESET bpu.audit_truncate")  # a production session: no test-flush switch
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cur.execute(sql)
    assert ParticipantEvent.objects.filter(pgh_label="insert").exists()


def test_every_event_table_has_the_append_only_guard() -> None:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname, count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE p.proname = 'audit_append_only_guard' GROUP BY c.relname"
        )
        guarded = dict(cur.fetchall())
    tables = {m._meta.db_table for m in event_models()}
    # the 14 of migration 0002, sponsor consents and batches (0003), bills, suspense items and
    # their resolutions (0005), autodebit mandates (0006), commission rules, statements and
    # Perisai office memberships (0012), backup codes (0013)
    assert len(tables) == 25
    assert {t: guarded.get(t) for t in tables} == {t: 2 for t in tables}


# --- the admin page -----------------------------------------------------------------------
def test_admin_history_page_shows_the_audit_trail(admin_user: Any, admin_api: Caller) -> None:
    r = admin_api.post("/api/v1/participants/", reg_body(nik=next_nik()))
    pk = r.json()["id"]
    admin_api.patch(f"/api/v1/participants/{pk}/", {"address": "Jl. Kenanga No. 3"})
    http = Client()
    login_as(http, admin_user)
    page = http.get(f"/admin/enrollment/participant/{pk}/history/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="audit-history-table"' in html
    assert "Jl. Kenanga No. 3" in html and admin_api.client.name in html
    assert html.count('class="audit-event') == 2
    # Read-only lists of every event table; no add, change or delete.
    lst = http.get("/admin/audit/participantevent/")
    assert lst.status_code == 200 and b"Add participant event" not in lst.content
    event = ParticipantEvent.objects.filter(pgh_obj_id=pk).first()
    assert event is not None
    change = http.post(f"/admin/audit/participantevent/{event.pk}/change/", {"address": "x"})
    assert change.status_code == 403
    assert http.post(f"/admin/audit/participantevent/{event.pk}/delete/").status_code == 403


def test_participant_history_includes_payments_and_ledger(
    admin_api: Caller, make_caller: Any
) -> None:
    person = admin_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()
    channel = make_caller("channel", payment_channel="bank")
    total = admin_api.get("/api/v1/quotes/", {"income": 1_000_000, "months": 1}).json()["total"]
    r = channel.post(
        "/api/v1/payments/",
        {
            "kpj_number": person["kpj_number"],
            "amount": total,
            "months": 1,
            "reference": "BANK-AUDIT-1",
            "payer": "participant",
            "paid_at": timezone.now().isoformat(),
        },
    )
    assert r.status_code == 201, r.content
    tables = {e.table for e in participant_history(Participant.objects.get(pk=person["id"]))}
    # each table by its model's name, in the active language (Indonesian by default)
    assert tables == {str(m._meta.verbose_name) for m in (Participant, Payment, LedgerEntry)}


def test_staff_profile_role_is_tracked_from_creation(agent: Any) -> None:
    staff = StaffProfile.objects.get(user=agent)
    assert [e.pgh_label for e in events(StaffProfileEvent, staff.pk)] == ["insert"]


def test_generators_can_skip_only_the_audit_triggers_for_their_transaction(register: Any) -> None:
    """bench/generate.py-style loads: no audit rows, but sync_txid is still stamped."""
    from bpjsportal.audit.bulk import audit_trigger_ids, skip_audit_triggers

    assert len(audit_trigger_ids(Participant)) == 3
    p = register()
    with transaction.atomic(), connection.cursor() as cur:
        skip_audit_triggers(cur.cursor, Participant)
        cur.execute(
            "UPDATE enrollment_participant SET address = 'Jl. Sintetis', sync_txid = 0"
            " WHERE id = %s",
            [p.pk],
        )
        set_local(cur, "pgtrigger.ignore", "{}")
    p.refresh_from_db()
    assert p.address == "Jl. Sintetis" and p.sync_txid != 0  # the other trigger still ran
    assert [e.pgh_label for e in events(ParticipantEvent, p.pk)] == ["insert"]


def test_connections_define_pgtrigger_ignore_so_triggers_take_the_fast_path() -> None:
    """Undefined, every audited row pays a caught exception (about 9x on bulk inserts)."""
    with connection.cursor() as cur:
        cur.execute("SELECT current_setting('pgtrigger.ignore', true)")
        assert cur.fetchone()[0] == "{}"
