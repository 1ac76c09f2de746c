"""Read paths of the cohort retention section of the dashboard: the cohort curves and the lapse
and reactivation flows for one cut, from the cohort rollups only (reporting.rollups.cohorts),
cached like the other figures (reporting/cache.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from contributions.rates import add_months
from enrollment.models import Occupation, Participant, PayerType, StaffProfile

from . import cache as figures_cache
from .models import CohortBuild, CohortRollup, RetentionFlowRollup
from .rollups.cohorts import MONTHS
from .selectors import Filters

# The cuts besides the province, in the order the page lists them; at most one at a time.
DIMENSIONS = ("occupation", "channel", "payer", "agent")
CHART_COHORTS = 6  # the chart draws the latest cohorts and the average of all


@dataclass(frozen=True)
class CohortFilters:
    """One cut of the cohort rollups: a province ('' = the country) and at most one dimension
    with its key (CohortRollup.dimension / key)."""

    province: str = ""
    dimension: str = ""
    key: str = ""
    label: str = ""


def parse_cohort_filters(params: Any, f: Filters) -> tuple[CohortFilters, list[str]]:
    """The cut from the dashboard's filters (province, occupation; a regional admin's province
    is already forced in `f`) and the cohort section's own (channel, payer, agent code). More
    than one of occupation, channel, payer and agent, or an unknown value, gives an error
    message and that filter is not applied (the first valid one is)."""
    errors: list[str] = []
    wanted: list[tuple[str, str, str]] = []
    if f.occupation:
        occupation = Occupation.objects.filter(code=f.occupation).first()
        if occupation is not None:
            wanted.append(
                ("occupation", occupation.code, occupation.localized_name(get_language() or "id"))
            )
    channel = str(params.get("channel") or "").strip()
    if channel:
        labels = dict(Participant.Channel.choices)
        if channel in labels:
            wanted.append(("channel", channel, str(labels[channel])))
        else:
            errors.append(_("Unknown registration channel."))
    payer = str(params.get("payer") or "").strip()
    if payer:
        payers = dict(PayerType.choices)
        if payer in payers:
            wanted.append(("payer", payer, str(payers[payer])))
        else:
            errors.append(_("Unknown payer type."))
    agent_code = str(params.get("agent") or "").strip()
    if agent_code:
        agents = StaffProfile.objects.filter(agent_code=agent_code[:20])
        if f.province:  # a regional admin (or a chosen province): that province's agents
            agents = agents.filter(branch__province_id=f.province)
        agent = agents.values_list("pk", flat=True).first() if len(agent_code) <= 20 else None
        if agent is not None:
            wanted.append(("agent", str(agent), agent_code))
        elif f.province:
            errors.append(
                _("No agent of this province has the code %(code)s.") % {"code": agent_code[:20]}
            )
        else:
            errors.append(_("No agent has the code %(code)s.") % {"code": agent_code[:20]})
    if len(wanted) > 1:
        errors.append(
            _(
                "Cohorts can be cut by one of occupation, channel, payer or agent at a time "
                "(with or without a province): showing %(shown)s only."
            )
            % {"shown": wanted[0][2]}
        )
    dimension, key, label = wanted[0] if wanted else ("", "", "")
    return CohortFilters(f.province or "", dimension, key, label), errors


def cohort_figures(cf: CohortFilters) -> dict[str, Any]:
    """The cut's cohorts (newest first: size, active count and share at each membership month)
    and its flows (lapses, reactivations per month, oldest first), as plain data."""
    built = CohortBuild.objects.filter(pk=1).values_list("built_at", flat=True).first()
    return figures_cache.cached(
        "cohorts", cf, lambda: _cohort_figures(cf), built and built.isoformat(), labels=False
    )


def _cohort_figures(cf: CohortFilters) -> dict[str, Any]:
    state = CohortBuild.objects.filter(pk=1).first()
    out: dict[str, Any] = {
        "last_month": state.last_month.isoformat()[:7] if state else None,
        "months": list(range(1, MONTHS + 1)),
        "cohorts": [],
        "average": [],
        "flows": [],
    }
    if state is None:
        return out
    # an agent's rows are the whole country's (the agent's portfolio; rollups.cohorts._CUTS)
    province = "" if cf.dimension == "agent" else cf.province
    cut = {"province_id": province, "dimension": cf.dimension, "key": cf.key}
    cohorts: dict[Any, dict[str, Any]] = {}
    for cohort, _month, participants, active in (
        CohortRollup.objects.filter(**cut)
        .order_by("-cohort", "month")
        .values_list("cohort", "month", "participants", "active")
    ):
        row = cohorts.setdefault(
            cohort,
            {"cohort": cohort.isoformat()[:7], "participants": participants, "active": [],
             "rates": []},
        )  # fmt: skip
        row["active"].append(active)
        row["rates"].append(round(active / participants, 4) if participants else None)
    out["cohorts"] = list(cohorts.values())
    for k in range(MONTHS):  # the average over the cohorts that reached month k + 1
        reached = [c for c in out["cohorts"] if len(c["active"]) > k]
        size = sum(c["participants"] for c in reached)
        active = sum(c["active"][k] for c in reached)
        out["average"].append(round(active / size, 4) if size else None)
    flows = {
        month: (lapses, reactivations)
        for month, lapses, reactivations in RetentionFlowRollup.objects.filter(**cut).values_list(
            "month", "lapses", "reactivations"
        )
    }
    for i in range(MONTHS - 1, -1, -1):
        month = add_months(state.last_month, -i)
        lapses, reactivations = flows.get(month, (0, 0))
        out["flows"].append(
            {
                "month": month.isoformat()[:7],
                "lapses": lapses,
                "reactivations": reactivations,
                "net": reactivations - lapses,
            }
        )
    return out


def cohort_table(cf: CohortFilters) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """The export of the cohort table: one row per cohort, its size and the share active at
    each membership month (blank where the month has not ended)."""
    figures = cohort_figures(cf)
    keys = ["cohort", "participants", *(f"m{k}" for k in figures["months"])]
    headers = [
        _("Registration month"),
        _("Participants"),
        *(_("Month %(k)s (%% active)") % {"k": k} for k in figures["months"]),
    ]
    rows = []
    for c in figures["cohorts"]:
        row: dict[str, Any] = {"cohort": c["cohort"], "participants": c["participants"]}
        for k, rate in enumerate(c["rates"], start=1):
            row[f"m{k}"] = round(rate * 100, 2) if rate is not None else None
        rows.append(row)
    return keys, headers, rows


def flow_table(cf: CohortFilters) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    figures = cohort_figures(cf)
    keys = ["month", "lapses", "reactivations", "net"]
    headers = [_("Month"), _("Lapsed"), _("Reactivated"), _("Net")]
    return keys, headers, figures["flows"]


def choices() -> dict[str, list[tuple[str, str]]]:
    """The cohort section's own filters: registration channels and payer types."""
    return {
        "channels": [(k, str(v)) for k, v in Participant.Channel.choices],
        "payers": [(k, str(v)) for k, v in PayerType.choices],
    }
