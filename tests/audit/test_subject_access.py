"""Data-subject requests: everything held about one participant, as JSON, audited as an access."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from bpjsportal.audit.models import DATA_EXPORT, ParticipantEvent
from contributions.models import LedgerEntry, Payment
from enrollment.models import Participant
from tests.api.conftest import Caller, next_nik, reg_body
from tests.conftest import login_as

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_person(admin_api: Caller, channel_api: Caller) -> dict[str, Any]:
    person = admin_api.post("/api/v1/participants/", reg_body(nik=next_nik())).json()
    total = admin_api.get("/api/v1/quotes/", {"income": 1_000_000, "months": 1}).json()["total"]
    r = channel_api.post(
        "/api/v1/payments/",
        {
            "kpj_number": person["kpj_number"],
            "amount": total,
            "months": 1,
            "reference": "BANK-DSR-1",
            "paid_at": timezone.now().isoformat(),
            "payer": "participant",
        },
    )
    assert r.status_code == 201, r.content
    from contributions.tasks import plan_reminders

    plan_reminders.apply(kwargs={"dispatch": False})
    return person


@pytest.mark.real_clock("the export's event (Python's clock) newest among the triggers' (the DB's)")
def test_command_exports_everything_and_records_the_access(
    paid_person: dict[str, Any], admin_user: Any
) -> None:
    out = io.StringIO()
    call_command(
        "export_participant_data",
        "--kpj",
        paid_person["kpj_number"],
        "--by",
        admin_user.username,
        "--reason",
        "DSR-2026-001",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    assert data["format"] == "bpu-participant-export/1"
    assert data["participant"]["nik"] == paid_person["nik"]  # the full NIK, to its owner
    assert data["participant"]["kpj_number"] == paid_person["kpj_number"]
    assert "sync_txid" not in data["participant"]
    assert data["consent"]["consent_data"] is True
    assert data["coverage"]["status"] == "active"
    assert len(data["payments"]) == 1 and data["payments"][0]["reference"] == "BANK-DSR-1"
    assert [e["kind"] for e in data["ledger"]] == ["payment"]
    assert isinstance(data["reminders"], list)
    labels = [e["label"] for e in data["audit_history"]]
    assert {"insert", DATA_EXPORT} <= set(labels) and labels[0] == DATA_EXPORT
    names = {str(m._meta.verbose_name) for m in (Participant, Payment, LedgerEntry)}
    assert {e["table"] for e in data["audit_history"]} >= names  # in the active language
    # The access itself is in the audit trail: who, via what, why.
    event = ParticipantEvent.objects.get(pgh_obj_id=paid_person["id"], pgh_label=DATA_EXPORT)
    ctx = event.pgh_context
    assert ctx["user"] == admin_user.pk and ctx["username"] == admin_user.username
    assert ctx["command"] == "export_participant_data" and ctx["via"] == "command"
    assert ctx["reason"] == "DSR-2026-001" and ctx["data_access"] == "subject_export"


def test_command_by_nik_and_its_errors(
    paid_person: dict[str, Any], admin_user: Any, agent: Any, tmp_path: Any
) -> None:
    target = tmp_path / "subject.json"
    call_command(
        "export_participant_data",
        "--nik",
        paid_person["nik"],
        "--by",
        admin_user.username,
        "--output",
        str(target),
        stderr=io.StringIO(),
    )
    assert json.loads(target.read_text())["participant"]["id"] == paid_person["id"]
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    # the command speaks the default language (Indonesian)
    with pytest.raises(CommandError, match="Hanya administrator"):
        call_command(
            "export_participant_data", "--kpj", paid_person["kpj_number"], "--by", "agent_bdg"
        )
    with pytest.raises(CommandError, match="Tidak ada peserta"):
        call_command("export_participant_data", "--kpj", "00000000000", "--by", admin_user.username)
    with pytest.raises(CommandError, match="No user"):
        call_command(
            "export_participant_data", "--kpj", paid_person["kpj_number"], "--by", "nobody"
        )
    # Refused exports leave no access event.
    assert ParticipantEvent.objects.filter(pgh_label=DATA_EXPORT).count() == 1


def test_admin_action_downloads_json_for_admins_only(
    paid_person: dict[str, Any], admin_user: Any, supervisor: Any
) -> None:
    http = Client(REMOTE_ADDR="198.51.100.4")
    login_as(http, admin_user)
    body = {"action": "export_subject_data", "_selected_action": [paid_person["id"]]}
    r = http.post("/admin/enrollment/participant/", body)
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/json")
    assert paid_person["kpj_number"] in r["Content-Disposition"]
    assert json.loads(r.content)["participant"]["nik"] == paid_person["nik"]
    event = ParticipantEvent.objects.get(pgh_obj_id=paid_person["id"], pgh_label=DATA_EXPORT)
    assert event.pgh_context["ip"] == "198.51.100.4" and event.pgh_context["via"] == "admin"
    # A staff member who may open the admin but is not an administrator gets a message.
    supervisor.is_staff = True
    supervisor.save()
    from django.contrib.auth.models import Permission

    supervisor.user_permissions.add(Permission.objects.get(codename="view_participant"))
    other = Client()
    other.force_login(supervisor)
    r = other.post("/admin/enrollment/participant/", body, follow=True)
    assert r.status_code == 200 and not r["Content-Type"].startswith("application/json")
    assert ParticipantEvent.objects.filter(pgh_label=DATA_EXPORT).count() == 1
