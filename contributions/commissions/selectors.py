"""The read paths of commissions: the statements a user may see (the `view_commissions` row of
enrollment/permissions.py), an agent's earnings, a statement's lines with their reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db.models import Q, QuerySet, Sum

from enrollment import permissions
from enrollment.permissions import Scope

from .models import CommissionLine, CommissionStatement, StatementStatus
from .services import NOTES


def statements_in_scope(who: Any) -> QuerySet[CommissionStatement]:
    """own: the agent's statements; branch: those of the branch's agents and offices; province:
    of the province's branches; national: all. Outside the scope is a 404."""
    qs = CommissionStatement.objects.select_related(
        "agent__user", "agent__branch", "office__branch", "rule"
    )
    scope = permissions.scope_of(who, "view_commissions")
    profile = permissions.staff_profile(who)
    if scope == Scope.NATIONAL:
        return qs
    if profile is None:
        return qs.none()
    if scope == Scope.OWN:
        return qs.filter(kind=CommissionStatement.Kind.AGENT, agent=profile)
    if scope == Scope.BRANCH and profile.branch_id is not None:
        return qs.filter(
            Q(agent__branch_id=profile.branch_id) | Q(office__branch_id=profile.branch_id)
        )
    if scope == Scope.PROVINCE and profile.province_id is not None:
        return qs.filter(
            Q(agent__branch__province_id=profile.province_id)
            | Q(office__branch__province_id=profile.province_id)
        )
    return qs.none()


@dataclass(frozen=True)
class Earnings:
    approved: int  # approved, not yet paid
    paid: int
    draft: int  # the open drafts (this month's and any month not yet approved)

    @property
    def to_date(self) -> int:
        return self.approved + self.paid


def earnings_of(statements: QuerySet[CommissionStatement]) -> Earnings:
    sums = {
        row["status"]: int(row["s"] or 0)
        for row in statements.order_by().values("status").annotate(s=Sum("total"))
    }
    return Earnings(
        approved=sums.get(StatementStatus.APPROVED, 0),
        paid=sums.get(StatementStatus.PAID, 0),
        draft=sums.get(StatementStatus.DRAFT, 0),
    )


def lines_of(statement: CommissionStatement) -> list[dict[str, Any]]:
    """The lines, each with its reason in words (the participant shown by KPJ and name)."""
    rows = []
    qs = statement.lines.select_related("participant", "source_statement__agent__user").order_by(
        "kind", "participant_id", "id"
    )
    for line in qs:
        who = ""
        if line.participant is not None:
            who = f"{line.participant.kpj_number} {line.participant.full_name}"
        elif line.source_statement is not None and line.source_statement.agent is not None:
            agent = line.source_statement.agent
            who = agent.agent_code or agent.user.get_username()
        rows.append(
            {
                "line": line,
                "kind": line.get_kind_display(),
                "who": who,
                "reason": NOTES.get(line.note, line.note),
            }
        )
    return rows


def export_rows(month: date) -> list[dict[str, Any]]:
    """The approved and paid statements of `month`, one row each, for the payout."""
    rows = []
    qs = (
        CommissionStatement.objects.filter(
            month=month, status__in=[StatementStatus.APPROVED, StatementStatus.PAID]
        )
        .select_related("agent__user", "agent__branch", "office__branch")
        .order_by("kind", "id")
    )
    for st in qs:
        if st.kind == CommissionStatement.Kind.AGENT and st.agent is not None:
            code = st.agent.agent_code or ""
            name = st.agent.user.get_full_name() or st.agent.user.get_username()
            branch = st.agent.branch.code if st.agent.branch else ""
        else:
            assert st.office is not None
            code, name, branch = st.office.code, st.office.name, st.office.branch.code
        rows.append(
            {
                "statement": st.pk,
                "month": f"{st.month:%Y-%m}",
                "kind": st.kind,
                "code": code,
                "name": name,
                "branch": branch,
                "new_participants": st.new_participants,
                "qualifying": st.qualifying,
                "fee": st.fee_total,
                "incentive": st.incentive_total,
                "clawback": st.clawback_total,
                "office_share": st.office_total,
                "total": st.total,
                "status": st.status,
                "approved_at": st.approved_at.isoformat() if st.approved_at else "",
                "paid_at": st.paid_at.isoformat() if st.paid_at else "",
                "payment_reference": st.payment_reference,
            }
        )
    return rows


def line_count(statement: CommissionStatement) -> int:
    return CommissionLine.objects.filter(statement=statement).count()
