"""Who may do what, and on which participants — the roles table, in one place.

`TABLE` maps every action to the scope each principal has for it. A principal is a portal
user's role (agent, supervisor, regional_admin, admin; a superuser counts as admin) or an API
client's scope (`api:admin`, `api:partner`, `api:channel`, `api:agent`). Scopes:

- own: the participants the agent registered (an agent API client: its agent's);
- branch: the participants (or league) of the user's branch;
- province: the user's province (regional administrators);
- national: everyone;
- partner: the participants a partner registered (API partner clients); for paying only, also
  those who consented to be sponsored by it (contributions.sponsorship);
- key: only a participant whose exact KPJ or NIK the client sends (payment channels: what is
  due and paying it, never the participant's record);
- none: not allowed (403 for an action, 404 for an object outside the scope).

Pages, API views, the admin site and exports ask `can(who, action, obj)` and take their
querysets from `participants_in_scope(who, action)`. Celery tasks act for the system, not for a
user: the view or command that enqueues one checks `can` first. docs/security.md ("Roles and
scopes") prints this table and a test checks that the two agree. Lives in enrollment, the lowest
app, so every app may import it.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from django.db.models import Q, QuerySet

from .models import ApiClient, Participant, Partner, StaffProfile, nik_q


class Scope(StrEnum):
    OWN = "own"
    BRANCH = "branch"
    PROVINCE = "province"
    NATIONAL = "national"
    PARTNER = "partner"
    KEY = "key"
    NONE = "none"


ROLES = ("agent", "supervisor", "regional_admin", "admin")
API_SCOPES = ("api:admin", "api:partner", "api:channel", "api:agent")
PRINCIPALS = ROLES + API_SCOPES

# What each action means (the first column of the docs table).
ACTIONS: dict[str, str] = {
    "view_participants": "view participant list and detail (card, ledger, receipts)",
    "see_full_nik": "see the full NIK (elsewhere it is masked)",
    "register_participant": "register a participant",
    "edit_participant": "edit a participant",
    "look_up_dues": "look up what a participant owes by exact KPJ or NIK (masked name, amount)",
    "record_payment": "record a payment (cash at the door; API: any channel)",
    "reverse_payment": "reverse a payment",
    "resolve_suspense": "settle suspense money from channels (apply it, or mark it for refund)",
    "post_sponsor_batch": "post a sponsor batch",
    "manage_sponsor_consent": "record (or withdraw) a participant's consent to a sponsor",
    "manage_reminders": "opt a participant out of (or back into) reminders",
    "follow_up": "work the follow-up queue (/arrears/): contact, record the outcome",
    "view_reminder_plan": "view the reminder plan and uplift (/reminders/today/ and uplift/)",
    "view_league": "view the agents' league table",
    "view_dashboard": "view the progress dashboard and report API",
    "export": "export report tables (CSV, XLSX)",
    "manage_targets": "set the yearly targets",
    "manage_rates": "manage rate schedules, discounts and the holiday calendar",
    "manage_api_clients": "manage API clients (issue, revoke tokens)",
    "manage_users": "manage users and their roles",
    "use_back_office": "use the back office (/admin/)",
    "view_audit": "view the audit trail",
    "data_subject_export": "export all data held on one participant (data-subject request)",
    "view_commissions": "view Perisai commission statements and why each line is there",
    "approve_commissions": "approve commission statements and mark them paid",
    "export_commissions": "export approved commission statements for payout (CSV, XLSX)",
}

NO, OWN, BR, PROV, NAT = Scope.NONE, Scope.OWN, Scope.BRANCH, Scope.PROVINCE, Scope.NATIONAL
PART, KEY = Scope.PARTNER, Scope.KEY


def _row(*scopes: Scope) -> dict[str, Scope]:
    if len(scopes) != len(PRINCIPALS):
        raise ValueError("a roles-table row needs one scope per principal")
    return dict(zip(PRINCIPALS, scopes, strict=True))


# fmt: off
#                            agent supervisor regional admin |  api:admin partner channel agent
TABLE: dict[str, dict[str, Scope]] = {
    "view_participants":    _row(OWN , BR  , PROV, NAT,   NAT , PART, NO  , OWN),
    "see_full_nik":         _row(NO  , NO  , NO  , NAT,   NAT , NO  , NO  , NO),
    "register_participant": _row(OWN , BR  , PROV, NAT,   NAT , PART, NO  , OWN),
    "edit_participant":     _row(NO  , NO  , NO  , NAT,   NAT , PART, NO  , OWN),
    "look_up_dues":         _row(OWN , BR  , PROV, NAT,   NAT , PART, KEY , OWN),
    "record_payment":       _row(OWN , BR  , PROV, NAT,   NAT , PART, KEY , OWN),
    "reverse_payment":      _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "resolve_suspense":     _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "post_sponsor_batch":   _row(NO  , NO  , NO  , NAT,   NAT , PART, NO  , NO),
    "manage_sponsor_consent": _row(OWN, BR  , PROV, NAT,   NO  , NO  , NO  , NO),
    "manage_reminders":     _row(OWN , BR  , PROV, NAT,   NO  , NO  , NO  , NO),
    "follow_up":            _row(OWN , BR  , PROV, NAT,   NO  , NO  , NO  , NO),
    "view_reminder_plan":   _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "view_league":          _row(BR  , BR  , PROV, NAT,   NO  , NO  , NO  , NO),
    "view_dashboard":       _row(NO  , NO  , PROV, NAT,   NAT , NO  , NO  , NO),
    "export":               _row(BR  , BR  , PROV, NAT,   NO  , NO  , NO  , NO),
    "manage_targets":       _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "manage_rates":         _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "manage_api_clients":   _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "manage_users":         _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "use_back_office":      _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "view_audit":           _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "data_subject_export":  _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "view_commissions":     _row(OWN , BR  , PROV, NAT,   NO  , NO  , NO  , NO),
    "approve_commissions":  _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
    "export_commissions":   _row(NO  , NO  , NO  , NAT,   NO  , NO  , NO  , NO),
}
# fmt: on
if set(TABLE) != set(ACTIONS):
    raise ValueError("every action of the roles table needs a description, and vice versa")

# Roles that must pass a second factor (TOTP) after the password (docs/security.md).
OTP_REQUIRED_ROLES = frozenset({"admin", "regional_admin"})


# --- who is asking ---------------------------------------------------------------------------
def staff_profile(user: Any) -> StaffProfile | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        profile: StaffProfile = user.staff
        return profile
    except (StaffProfile.DoesNotExist, AttributeError):
        return None


def principal_of(who: Any) -> str | None:
    """The table column for a user or API client; None = no access at all."""
    if isinstance(who, ApiClient):
        return f"api:{who.scope}" if who.active else None
    client = getattr(who, "client", None)  # an API client's request.user (ClientUser)
    if isinstance(client, ApiClient):
        return principal_of(client)
    if who is None or not getattr(who, "is_authenticated", False):
        return None
    if not getattr(who, "is_active", True):
        return None
    if getattr(who, "is_superuser", False):
        return "admin"
    profile = staff_profile(who)
    return profile.role if profile is not None and profile.role in ROLES else None


def scope_of(who: Any, action: str) -> Scope:
    """The scope `who` has for `action` (Scope.NONE if not allowed). Unknown actions raise."""
    row = TABLE[action]
    principal = principal_of(who)
    return row.get(principal, Scope.NONE) if principal else Scope.NONE


def can(who: Any, action: str, obj: Any = None) -> bool:
    """May `who` (a user or an API client) do `action` — on `obj` if given (a participant, or
    anything with a `.participant`, e.g. a payment)?"""
    scope = scope_of(who, action)
    if scope == Scope.NONE:
        return False
    if obj is None:
        return True
    participant = obj if isinstance(obj, Participant) else getattr(obj, "participant", None)
    if not isinstance(participant, Participant):
        return scope == Scope.NATIONAL
    return participants_in_scope(who, action).filter(pk=participant.pk).exists()


def requires_otp(user: Any) -> bool:
    """Admins and regional admins (and any back-office user) log in with a second factor."""
    if not getattr(user, "is_authenticated", False) or isinstance(
        getattr(user, "client", None), ApiClient
    ):
        return False
    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        return True
    return principal_of(user) in OTP_REQUIRED_ROLES


# --- scopes as querysets ---------------------------------------------------------------------
# A partner's scope is the participants it registered. A higher app may widen it for some
# actions only: contributions lets a partner *pay* for participants who consented to it
# (record_payment, post_sponsor_batch), which never lets it read or change them.
PartnerFilter = Callable[[Partner, str], Q | None]
_partner_filters: list[PartnerFilter] = []


def register_partner_filter(build: PartnerFilter) -> None:
    """`build(partner, action)` returns the participants to add to the partner's scope for that
    action, or None to add nobody."""
    if build not in _partner_filters:
        _partner_filters.append(build)


def participants_in_scope(who: Any, action: str = "view_participants") -> QuerySet[Participant]:
    """The participants `who` may do `action` on, by id. Outside it is a 404, never a 403, so
    nobody can probe which ids exist. The `key` scope finds nobody by id (exact look-ups go
    through `participants_by_key`)."""
    qs = Participant.objects.all()
    scope = scope_of(who, action)
    if scope == Scope.NATIONAL:
        return qs
    client = who if isinstance(who, ApiClient) else getattr(who, "client", None)
    if isinstance(client, ApiClient):
        if scope == Scope.PARTNER and client.partner is not None:
            condition = Q(partner=client.partner)
            for build in _partner_filters:
                extra = build(client.partner, action)
                if extra is not None:
                    condition |= extra
            return qs.filter(condition)
        if scope == Scope.OWN and client.agent is not None:
            return qs.filter(registered_by=client.agent)
        return qs.none()
    profile = staff_profile(who)
    if profile is None:
        return qs.none()
    if scope == Scope.PROVINCE and profile.province_id is not None:
        return qs.filter(province_id=profile.province_id)
    if scope == Scope.BRANCH and profile.branch_id is not None:
        return qs.filter(branch_id=profile.branch_id)
    if scope == Scope.OWN:
        return qs.filter(registered_by=profile)
    return qs.none()


def participants_by_key(
    who: Any, action: str = "view_participants", *, kpj: str = "", nik: str = ""
) -> QuerySet[Participant]:
    """Participants matching an exact KPJ or NIK: everyone for the `key` scope (a payment
    channel is told the number by the payer), else within `who`'s scope."""
    scope = scope_of(who, action)
    if scope == Scope.NONE:
        return Participant.objects.none()
    base = Participant.objects.all() if scope == Scope.KEY else participants_in_scope(who, action)
    if kpj:
        return base.filter(kpj_number=kpj)
    if nik:
        return base.filter(nik_q(nik))  # the digest index; nothing decrypted
    return base.none()


def docs_table() -> list[list[str]]:
    """The table as docs/security.md prints it: a header row, then one row per action."""
    rows = [["action", *PRINCIPALS]]
    for action, description in ACTIONS.items():
        rows.append([f"`{action}` {description}", *(str(TABLE[action][p]) for p in PRINCIPALS)])
    return rows
