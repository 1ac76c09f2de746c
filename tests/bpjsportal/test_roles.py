"""The roles table (enrollment/permissions.py, docs/security.md) against every page and API
endpoint: each role and each API client scope, inside and outside its scope.

The expected answers are worked out here from the table and the participants' facts (who
registered them, their branch and province) — not by asking the permissions module — so a page
that ignores the table, or a table that drifts from the docs, fails."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from enrollment.permissions import ACTIONS, PRINCIPALS, TABLE, Scope, docs_table
from tests.api.conftest import Caller, reg_body
from tests.conftest import login_as, make_staff, nik_for

ROOT = Path(__file__).resolve().parents[2]


# --- the docs table is the module's table ---------------------------------------------------------
def _docs_rows() -> list[list[str]]:
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("## Roles and scopes", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|(-+\|)+", line.strip()):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_docs_roles_table_is_the_permissions_table() -> None:
    assert _docs_rows() == docs_table()


def test_every_action_has_a_scope_for_every_principal() -> None:
    for action in ACTIONS:
        assert set(TABLE[action]) == set(PRINCIPALS), action
        assert all(isinstance(scope, Scope) for scope in TABLE[action].values())


# --- the world: two branches in two provinces, one participant per corner ---------------------
@dataclass
class World:
    users: dict[str, Any]  # role -> user
    participants: dict[str, Any]  # own (agent's), branch (agent2's, same branch), other (SBY)
    payments: dict[str, Any]  # same keys: a payment of each participant


@pytest.fixture
def world(branches: dict[str, Any], register: Any) -> World:
    from django.utils import timezone

    from contributions.models import Coverage
    from contributions.quotes import quote_payment
    from contributions.services import record_payment
    from enrollment.models import StaffProfile

    users = {
        "agent": make_staff("r_agent", "agent", branches["BDG"]),
        "supervisor": make_staff("r_super", "supervisor", branches["BDG"]),
        "regional_admin": make_staff("r_region", "agent", branches["BDG"]),
        "admin": make_staff("r_admin", "admin", None),
    }
    StaffProfile.objects.filter(user=users["regional_admin"]).update(
        role="regional_admin", branch=None, province_id="32", agent_code=None
    )
    agent2 = make_staff("r_agent2", "agent", branches["BDG"])
    agent_sby = make_staff("r_agent_sby", "agent", branches["SBY"])
    participants = {
        "own": register(registered_by=users["agent"].staff, nik=nik_for(serial=41)),
        "branch": register(registered_by=agent2.staff, nik=nik_for(serial=42)),
        "other": register(
            registered_by=agent_sby.staff, nik=nik_for(serial=43), village="35.78.01.1001"
        ),
    }
    payments = {}
    for key, p in participants.items():
        due = quote_payment(p, Coverage.objects.get(pk=p.pk), months=1, as_of=timezone.localdate())
        payments[key], _ = record_payment(
            participant=p,
            amount=due.amount,
            months=1,
            payer="participant",
            channel="bank",
            reference=f"ROLE-{key}",
            paid_at=timezone.now(),
        )
    return World(users, participants, payments)


def in_scope(world: World, role: str, scope: Scope, key: str) -> bool:
    """The oracle: is participant `key` inside `scope` for `role`'s user? From the facts."""
    p = world.participants[key]
    profile = world.users[role].staff
    profile.refresh_from_db()
    if scope == Scope.NATIONAL:
        return True
    if scope == Scope.PROVINCE:
        return p.province_id == profile.province_id
    if scope == Scope.BRANCH:
        return p.branch_id == profile.branch_id
    if scope == Scope.OWN:
        return p.registered_by_id == profile.pk
    return False


# --- pages: every route of the URL conf is classified here -------------------------------------
# name -> (kind, action): "object" pages take a participant (or payment) id — 404 outside the
# scope; "action" pages answer 403 when the role lacks the action; "login" pages only need a
# staff login; "public" pages need none (login, language, API docs, health, signed gateway
# callback, a reminder's signed pay link); "participant" pages are the participant's own (/me/:
# a login by one-time code, never a staff session: below, and
# tests/contributions/test_self_service.py);
# "field" routes are the agents' offline app (shell, manifest and worker public; enrolment an
# agent's session; data a field device's token: tests/contributions/test_field_app.py).
PAGES: dict[str, tuple[str, str | None]] = {
    "contributions:field_app": ("field", None),
    "contributions:field_manifest": ("field", None),
    "contributions:field_sw": ("field", None),
    "contributions:field_session": ("field", None),
    "contributions:field_enrol": ("field", None),
    "contributions:field_reference": ("field", None),
    "contributions:field_nik_prefixes": ("field", None),
    "contributions:field_participants": ("field", None),
    "contributions:field_regions": ("field", None),
    "enrollment:home": ("list", "view_participants"),
    "enrollment:register": ("action404", "register_participant"),
    "enrollment:check_nik": ("login", None),
    "enrollment:region_options": ("login", None),
    "enrollment:participant": ("object", "view_participants"),
    "enrollment:registered": ("object", "view_participants"),
    "enrollment:card": ("object", "view_participants"),
    "contributions:arrears": ("action", "follow_up"),
    "contributions:follow_up_record": ("object_post", "follow_up"),
    "contributions:record_cash": ("object", "record_payment"),
    "contributions:ledger": ("object", "view_participants"),
    "contributions:receipt": ("payment", "view_participants"),
    "contributions:reminders_today": ("action", "view_reminder_plan"),
    "contributions:reminders_uplift": ("action", "view_reminder_plan"),
    "contributions:reminder_opt_out": ("object_post", "manage_reminders"),
    "contributions:sponsor_consent": ("object_post", "manage_sponsor_consent"),
    "contributions:autodebit": ("object_post", "record_payment"),
    # Perisai commissions: a statement id, not a participant's; every role and scope is
    # checked in tests/contributions/test_commissions.py
    "contributions:commissions": ("action", "view_commissions"),
    "contributions:commission_statement": ("commission", "view_commissions"),
    "contributions:commission_approve": ("commission", "approve_commissions"),
    "contributions:commission_paid": ("commission", "approve_commissions"),
    "contributions:commission_export": ("commission", "export_commissions"),
    "contributions:sponsor_consent_withdraw": ("object_post_sponsor", "manage_sponsor_consent"),
    "contributions:gateway_callback": ("public", None),
    "contributions:pay_link": ("public", None),
    "contributions:me": ("participant", None),
    "contributions:me_start": ("participant", None),
    "contributions:me_code": ("participant", None),
    "contributions:me_logout": ("participant", None),
    "contributions:me_pay": ("participant", None),
    "contributions:me_receipt": ("participant", None),
    "contributions:me_reminders": ("participant", None),
    "contributions:me_autodebit": ("participant", None),
    "reporting:dashboard": ("action", "view_league"),
    "reporting:export": ("export", "export"),
    "reporting:target_edit": ("action", "manage_targets"),
    "health-live": ("public", None),
    "health-ready": ("public", None),
    "health-workers": ("public", None),
    "metrics": ("public", None),  # no staff login: a scraper's bearer token (test_metrics)
    "login": ("public", None),
    "logout": ("public", None),
    "otp-verify": ("public", None),
    "otp-setup": ("public", None),
    "otp-backup-codes": ("public", None),  # a staff login past the second factor: test_backup_codes
    "set_language": ("public", None),
    "javascript-catalog": ("public", None),
    "api-docs": ("public", None),
    "api-schema": ("public", None),
    "admin": ("admin", "use_back_office"),
    "api": ("api", None),  # token endpoints: see the API matrix below
    "api-reports-progress": ("api", None),
    "api-fallback": ("api", None),
}


def _route_names(patterns: list[Any], prefix: str = "") -> set[str]:
    names: set[str] = set()
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace in ("admin", "api", "api-fallback"):
                names.add(p.namespace)
            elif p.app_name == "admin" or getattr(p.urlconf_module, "__name__", "") == (
                "django.conf.urls.i18n"
            ):
                names |= {n for n in _route_names(p.url_patterns) if n}
            else:
                ns = f"{p.namespace}:" if p.namespace else ""
                names |= _route_names(p.url_patterns, prefix + ns)
        elif isinstance(p, URLPattern) and p.name:
            names.add(prefix + p.name)
    return names


def test_every_page_of_the_url_conf_is_in_the_matrix() -> None:
    assert _route_names(get_resolver().url_patterns) == set(PAGES)


def _client(role: str, world: World) -> Client:
    return login_as(Client(), world.users[role])


@pytest.mark.django_db
def test_every_role_on_every_object_page_inside_and_outside_its_scope(world: World) -> None:
    from django.urls import reverse

    from enrollment.models import Partner

    sponsor = Partner.objects.create(code="SRT-ROLES", name="Sertakan", kind="sponsor")
    wrong = []
    for role in ("agent", "supervisor", "regional_admin", "admin"):
        c = _client(role, world)
        for name, (kind, action) in PAGES.items():
            if kind not in ("object", "payment", "object_post", "object_post_sponsor"):
                continue
            assert action is not None
            for key in world.participants:
                inside = in_scope(world, role, TABLE[action][role], key)
                if kind == "payment":
                    url = reverse(name, args=[world.payments[key].pk])
                elif kind == "object_post_sponsor":
                    url = reverse(name, args=[world.participants[key].pk, sponsor.pk])
                else:
                    url = reverse(name, args=[world.participants[key].pk])
                if kind in ("object_post", "object_post_sponsor"):
                    got = c.post(url, {"reason": "test"}).status_code
                    expected = 302 if inside else 404
                else:
                    got = c.get(url).status_code
                    expected = 200 if inside else 404
                if got != expected:
                    wrong.append((role, name, key, expected, got))
    assert not wrong, wrong


@pytest.mark.django_db
def test_every_role_on_every_action_page(world: World) -> None:
    from django.contrib import admin
    from django.urls import reverse

    year = timezone.localdate().year
    wrong = []
    for role in ("agent", "supervisor", "regional_admin", "admin"):
        c = _client(role, world)

        def check(url: str, expected: int, label: str, c: Client = c, role: str = role) -> None:
            got = c.get(url).status_code
            if got != expected:
                wrong.append((role, label, expected, got))

        for name, (kind, action) in PAGES.items():
            allowed = action is not None and TABLE[action][role] != Scope.NONE
            if kind == "action":
                url = reverse(name, args=[year]) if name.endswith("target_edit") else reverse(name)
                check(url, 200 if allowed else 403, name)
            elif kind == "action404":  # no staff role for it: 404 (the page's rule since 2024)
                check(reverse(name), 200 if allowed else 404, name)
            elif kind == "login":
                url = reverse(name)
                if name.endswith("check_nik"):
                    got = c.post(url, {"nik": "123"}).status_code
                    if got != 200:
                        wrong.append((role, name, 200, got))
                else:
                    check(url + ("?level=2&province=32" if "region" in name else ""), 200, name)
            elif kind == "export":
                dashboard = TABLE["view_dashboard"][role] != Scope.NONE
                for table in ("league", "headline", "province"):
                    url = reverse(name, args=[table, "csv"])
                    ok = allowed and (table == "league" or dashboard)
                    check(url, 200 if ok else 403, f"export {table}")
            elif kind == "admin":
                check(reverse("admin:index"), 200 if allowed else 302, "admin:index")
                for model in admin.site._registry:
                    meta = model._meta
                    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
                    check(url, 200 if allowed else 302, url)
    assert not wrong, wrong


@pytest.mark.django_db
def test_participant_list_shows_exactly_the_scope(world: World) -> None:
    for role in ("agent", "supervisor", "regional_admin", "admin"):
        body = _client(role, world).get("/").content.decode()
        for key, p in world.participants.items():
            inside = in_scope(world, role, TABLE["view_participants"][role], key)
            assert (p.kpj_number in body) is inside, (role, key)


@pytest.mark.django_db
def test_regional_admin_reports_are_forced_to_their_province(world: World) -> None:
    c = _client("regional_admin", world)
    response = c.get("/reports/export/province.csv?province=35")
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('-32.csv"')


@pytest.mark.django_db
def test_anonymous_is_sent_to_login_on_every_staff_page(world: World) -> None:
    from django.urls import reverse

    c = Client()
    for name, (kind, _action) in PAGES.items():
        if kind in (
            "public",
            "participant",
            "api",
            "admin",
            "object_post",
            "object_post_sponsor",
            "field",
        ):
            continue  # POST-only pages: a GET is 405 before the login check
        if "check_nik" in name:
            continue
        if kind in ("object", "payment"):
            url = reverse(name, args=[world.participants["own"].pk])
        elif kind == "export":
            url = reverse(name, args=["league", "csv"])
        elif name.endswith("target_edit"):
            url = reverse(name, args=[2026])
        elif name.endswith("commission_export"):
            url = reverse(name, args=["2026-11", "csv"])
        elif kind == "commission":
            url = reverse(name, args=[1])
        else:
            url = reverse(name)
        response = c.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], name


@pytest.mark.django_db
def test_a_staff_session_is_not_a_participant_session(world: World) -> None:
    """Every role's login leaves the participant's pages at their own login: no staff member
    sees a participant's page, receipt or bill through /me/."""
    from django.urls import reverse

    payment = world.payments["own"]
    for role in ("agent", "supervisor", "regional_admin", "admin"):
        c = _client(role, world)
        home = c.get(reverse("contributions:me"))
        assert 'data-testid="me-login"' in home.content.decode(), role
        assert c.get(reverse("contributions:me_receipt", args=[payment.pk])).status_code == 404
        assert c.post(reverse("contributions:me_pay"), {"months": "1"}).status_code == 302
        stop = c.post(reverse("contributions:me_reminders"), {"reminders": "off"})
        assert stop.status_code == 302
        off = c.post(reverse("contributions:me_autodebit"), {"action": "off"})
        assert off.status_code == 302 and off["Location"] == reverse("contributions:me")
    from contributions.models import Bill, ReminderPreference

    assert not Bill.objects.exists() and not ReminderPreference.objects.exists()


# --- the API: every endpoint, every client scope ----------------------------------------------
API_ENDPOINTS = {
    "regions",
    "occupations",
    "quotes",
    "dues",
    "participants",
    "participants-bulk",
    "participant",
    "participant-ledger",
    "payments",
    "payment-batches",
    "sync-participants",
    "sync-payments",
    "payment-codes",
    "bill",
    "bill-payments",
    "bill-payment-reversal",
    "autodebit-mandate-cancellation",
    "not-found",
}


def test_every_api_endpoint_is_in_the_matrix() -> None:
    from bpjsportal import api_urls

    names = {p.name for p in api_urls.urlpatterns + api_urls.fallback}
    assert names == API_ENDPOINTS


def make_caller(scope: str, **kw: Any) -> Caller:
    from enrollment.api.clients import create_api_client

    issued = create_api_client(name=f"{scope} client", scope=scope, **kw)
    return Caller(Client(), issued.token, issued.client)


@pytest.fixture
def callers(world: World) -> dict[str, Caller]:
    from enrollment.models import Participant, Partner

    combofit = Partner.objects.create(code="COMBOFIT", name="ComboFit", kind="bundle")
    Participant.objects.filter(pk=world.participants["branch"].pk).update(partner=combofit)
    return {
        "api:admin": make_caller("admin"),
        "api:partner": make_caller("partner", partner=combofit),
        "api:channel": make_caller("channel", payment_channel="bank"),
        "api:agent": make_caller("agent", agent=world.users["agent"].staff),
    }


def api_in_scope(world: World, principal: str, caller: Caller, key: str) -> bool:
    p = world.participants[key]
    p.refresh_from_db()
    scope = TABLE["view_participants"][principal]
    if scope == Scope.NATIONAL:
        return True
    if scope == Scope.PARTNER:
        return p.partner_id == caller.client.partner_id
    if scope == Scope.OWN:
        return p.registered_by_id == caller.client.agent_id
    return False  # key: nobody by id


@pytest.mark.django_db
def test_every_api_scope_on_every_endpoint(world: World, callers: dict[str, Caller]) -> None:
    wrong = []

    def expect(principal: str, label: str, expected: int, got: int) -> None:
        if got != expected:
            wrong.append((principal, label, expected, got))

    from contributions.bills import open_bill

    today = timezone.localdate().isoformat()
    bill, _created = open_bill(participant=world.participants["own"], months=1)
    for principal, caller in callers.items():
        row = {action: TABLE[action][principal] for action in TABLE}
        # Bills: codes are issued for participants in the dues scope (never by a channel); only
        # a channel inquires and notifies, and a notification without a signature is 401.
        for key in ("own", "other"):
            p = world.participants[key]
            got = caller.post("/api/v1/payment-codes/", {"participant": p.pk, "months": 2})
            if principal == "api:channel":
                expect(principal, f"POST payment-codes {key}", 403, got.status_code)
            else:
                inside = api_in_scope(world, principal, caller, key)
                issued = 201 if got.status_code == 200 else got.status_code  # 200: already open
                expect(principal, f"POST payment-codes {key}", 201 if inside else 404, issued)
        channel = principal == "api:channel"
        got = caller.get(f"/api/v1/bills/{bill.code}/").status_code
        expect(principal, "GET bill", 200 if channel else 403, got)
        got = caller.post(f"/api/v1/bills/{bill.code}/payments/", {"reference": "x"}).status_code
        expect(principal, "POST bill payment unsigned", 401 if channel else 403, got)
        got = caller.post(f"/api/v1/bills/{bill.code}/payments/x/reversal/", {}).status_code
        expect(principal, "POST bill payment reversal unsigned", 401 if channel else 403, got)
        got = caller.post("/api/v1/autodebit/mandates/1/cancellation/", {}).status_code
        expect(principal, "POST mandate cancellation unsigned", 401 if channel else 403, got)
        for path in ("/api/v1/regions/", "/api/v1/occupations/", "/api/v1/sync/payments/"):
            expect(principal, path, 200, caller.get(path).status_code)
        quote = caller.get("/api/v1/quotes/", {"income": 1_000_000, "occupation": "petani"})
        expect(principal, "quotes", 200, quote.status_code)
        for key, p in world.participants.items():
            inside = api_in_scope(world, principal, caller, key)
            for path in (f"/api/v1/participants/{p.pk}/", f"/api/v1/participants/{p.pk}/ledger/"):
                expect(
                    principal,
                    f"GET {path} {key}",
                    200 if inside else 404,
                    caller.get(path).status_code,
                )
            edit = row["edit_participant"] != Scope.NONE and inside
            got = caller.patch(f"/api/v1/participants/{p.pk}/", {}).status_code
            expect(principal, f"PATCH {key}", 200 if edit else 404, got)
        own = world.participants["own"]
        listing = caller.get("/api/v1/participants/", {"kpj": own.kpj_number})
        lists = row["view_participants"] != Scope.NONE
        expect(principal, "list by kpj", 200 if lists else 403, listing.status_code)
        dues = caller.get("/api/v1/dues/", {"kpj": own.kpj_number}).status_code
        look = row["look_up_dues"]
        finds = look in (Scope.NATIONAL, Scope.KEY) or (
            look != Scope.NONE and api_in_scope(world, principal, caller, "own")
        )
        expect(principal, "dues of own", 200 if finds else 404, dues)
        may_register = row["register_participant"] != Scope.NONE
        got = caller.post("/api/v1/participants/", reg_body(nik="bad")).status_code
        expect(principal, "POST participants", 400 if may_register else 403, got)
        got = caller.post(
            "/api/v1/participants/bulk/", {"rows": []}, headers={"Idempotency-Key": "k-1"}
        ).status_code
        expect(principal, "POST bulk", 400 if may_register else 403, got)
        batch = {
            "reference": f"B-{principal}",
            "paid_at": f"{today}T10:00:00+07:00",
            "rows": [{"kpj_number": "99999999999", "months": 1}],
        }
        may_batch = row["post_sponsor_batch"] != Scope.NONE
        got = caller.post("/api/v1/payments/batches/", batch).status_code
        expect(principal, "POST batch", 400 if may_batch else 403, got)
        sync = row["view_participants"] not in (Scope.NONE, Scope.KEY)
        got = caller.get("/api/v1/sync/participants/").status_code
        expect(principal, "sync participants", 200 if sync else 403, got)
        dashboard = row["view_dashboard"] != Scope.NONE
        got = caller.get("/api/v1/reports/progress/").status_code
        expect(principal, "progress", 200 if dashboard else 403, got)
        # A payment for someone outside the scope is refused as unknown (404), never posted.
        other = world.participants["other"]
        pay_scope = row["record_payment"]
        body: dict[str, Any] = {
            "kpj_number": other.kpj_number,
            "amount": 1,
            "months": 1,
            "reference": f"P-{principal}",
            "paid_at": f"{today}T10:00:00+07:00",
        }
        if principal == "api:admin":  # the others post with their fixed channel and payer
            body.update(channel="bank", payer="participant")
        pay = caller.post("/api/v1/payments/", body)
        reaches = pay_scope in (Scope.NATIONAL, Scope.KEY)
        if reaches:  # it finds the participant, then refuses the wrong amount
            expect(principal, "POST payment other", 400, pay.status_code)
        else:
            expect(principal, "POST payment other", 404, pay.status_code)
    assert not wrong, wrong


@pytest.mark.django_db
def test_full_nik_only_for_principals_the_table_allows(
    world: World, callers: dict[str, Caller]
) -> None:
    own = world.participants["own"]
    for principal, caller in callers.items():
        body = caller.get("/api/v1/participants/", {"kpj": own.kpj_number}).json()
        shown = [row["nik"] for row in body.get("results", [])]
        if not shown:
            continue
        full = TABLE["see_full_nik"][principal] != Scope.NONE
        assert (shown[0] == own.nik) is full, principal
    for role in ("agent", "supervisor", "regional_admin", "admin"):
        body = _client(role, world).get(f"/participants/{own.pk}/").content.decode()
        if (
            TABLE["view_participants"][role] != Scope.NONE
            and TABLE["see_full_nik"][role] == Scope.NONE
        ):
            assert own.nik not in body, role
