"""Read paths of reporting: every figure on the dashboard, the exports and the API comes from
here, and only from the rollup tables (never a scan of participants or the ledger)."""

from __future__ import annotations

import calendar
import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.db.models import Count, Max, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from contributions.models import Coverage
from contributions.rates import add_months
from enrollment import permissions
from enrollment.models import (
    PAYER_GROUPS,
    Occupation,
    Participant,
    Partner,
    PayerType,
    Region,
    StaffProfile,
)

from . import cache as figures_cache
from . import projection
from .models import (
    AgentRollup,
    DailyRollup,
    DemographicRollup,
    ProvinceRollup,
    RollupDay,
    Target,
    TargetBreakdown,
)
from .rollups.definitions import FLOWS
from .targets import target_path

STOCKS = ("registered", "active", "grace", "lapsed")
YTD = FLOWS  # every flow of the rollups has a year-to-date sum


# --- who sees what ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """What a user may see: `dashboard` (national or one province) and/or a league table."""

    dashboard: bool
    province: str | None = None  # forced province (regional admins)
    league_branch: int | None = None  # supervisors and agents: their branch's agents
    league_all: bool = False


def scope_for(who: Any) -> Scope | None:
    """None = no access. From the roles table (enrollment/permissions.py): the dashboard for
    admins (national) and regional admins (their province only); the league table for them and
    for supervisors and agents (their branch). `who` is a user or an API client."""
    dashboard = permissions.scope_of(who, "view_dashboard")
    league = permissions.scope_of(who, "view_league")
    if dashboard == permissions.Scope.NONE and league == permissions.Scope.NONE:
        return None
    profile = permissions.staff_profile(who)
    province = profile.province_id if profile is not None else None
    branch = profile.branch_id if profile is not None else None
    return Scope(
        dashboard=dashboard != permissions.Scope.NONE,
        province=province if permissions.Scope.PROVINCE in (dashboard, league) else None,
        league_branch=branch if league == permissions.Scope.BRANCH else None,
        league_all=league == permissions.Scope.NATIONAL or dashboard == permissions.Scope.NATIONAL,
    )


# --- filters ------------------------------------------------------------------------------------
@dataclass
class Filters:
    year: int
    as_of: date
    province: str | None = None
    occupation: str | None = None
    partner: int | None = None

    def querystring(self) -> dict[str, str]:
        out = {"year": str(self.year)}
        if self.as_of != default_as_of(self.year):
            out["as_of"] = self.as_of.isoformat()
        if self.province:
            out["province"] = self.province
        if self.occupation:
            out["occupation"] = self.occupation
        if self.partner:
            out["partner"] = str(self.partner)
        return out


def default_as_of(year: int) -> date:
    today = timezone.localdate()
    return min(today, date(year, 12, 31)) if year <= today.year else date(year, 1, 1)


def parse_filters(params: Any, scope: Scope) -> Filters:
    """Filters from a query dict; bad values fall back to defaults. A regional admin's province
    replaces whatever the URL asks for."""
    today = timezone.localdate()
    try:
        year = int(params.get("year") or today.year)
    except ValueError:
        year = today.year
    year = min(max(year, 2000), today.year + 5)
    as_of = today if year == today.year else date(year, 12, 31)
    if as_of > today:
        as_of = today
    if as_of.year != year:
        as_of = date(year, 1, 1) if year > today.year else as_of
    try:  # an explicit day (not in the future) wins, and sets the year
        chosen = date.fromisoformat(str(params.get("as_of") or ""))
        if date(2000, 1, 1) <= chosen <= today:
            as_of, year = chosen, chosen.year
    except ValueError:
        pass
    province = _code(params.get("province"))
    if province and not Region.objects.filter(code=province, level=1).exists():
        province = None
    if scope.province:
        province = scope.province
    occupation = _code(params.get("occupation"))
    if occupation and not Occupation.objects.filter(code=occupation).exists():
        occupation = None
    partner: int | None
    try:
        partner = int(params.get("partner") or 0) or None
    except ValueError:
        partner = None
    if partner is not None and not 1 <= partner <= 2**31 - 1:
        partner = None
    return Filters(
        year=year, as_of=as_of, province=province, occupation=occupation, partner=partner
    )


_CODE = re.compile(r"[0-9A-Za-z._-]{1,32}")


def _code(value: object) -> str | None:
    """A filter code from the URL, or None for anything that cannot be one (NUL, too long)."""
    text = str(value or "").strip()
    return text if _CODE.fullmatch(text) else None


RollupModel = type[ProvinceRollup] | type[DailyRollup] | type[DemographicRollup]


def _rows(f: Filters, model: RollupModel = ProvinceRollup) -> Any:
    """The rollup rows of the filters. ProvinceRollup (no regency) unless the regency is
    needed: it holds the same figures in ~1/13 of DailyRollup's rows."""
    return _filtered(model.objects.all(), f)


def _filtered(qs: Any, f: Filters, path: str = "") -> Any:
    """`qs` cut to the filters' province, occupation and partner (`path`: the way from the
    queryset's model to the participant's columns, e.g. "participant__")."""
    if f.province:
        qs = qs.filter(**{f"{path}province_id": f.province})
    if f.occupation:
        qs = qs.filter(**{f"{path}occupation_id": f.occupation})
    if f.partner:
        qs = qs.filter(**{f"{path}partner_id": f.partner})
    return qs


def data_day(as_of: date) -> date | None:
    """The latest built rollup day on or before `as_of`."""
    return RollupDay.objects.filter(day__lte=as_of).aggregate(d=Max("day"))["d"]


def _sums(qs: QuerySet[ProvinceRollup], day: date) -> dict[str, int]:
    fields = {s: Sum(s) for s in STOCKS} | {y: Sum(f"ytd_{y}") for y in YTD}
    got = qs.filter(day=day).aggregate(**fields)
    return {k: int(v or 0) for k, v in got.items()}


# --- the headline, the series, the projection ---------------------------------------------------
@dataclass
class Progress:
    year: int
    as_of: date
    data_day: date | None
    filters: dict[str, str]
    registered: int = 0
    active: int = 0
    grace: int = 0
    lapsed: int = 0
    active_rate: float | None = None
    new_registrations: int = 0
    reactivations: int = 0
    lapses: int = 0
    payments: int = 0
    collections: dict[str, int] = field(default_factory=dict)
    target: int | None = None
    starting_point: int = 0
    projection: dict[str, Any] = field(default_factory=dict)
    series: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def year_target(f: Filters) -> tuple[int | None, Target | None]:
    """The target for the filtered cut: national without filters; a province/occupation/partner
    quota when exactly that one filter is set and a quota exists; else None (no target)."""
    target = Target.objects.filter(year=f.year).first()
    if target is None:
        return None, None
    cuts = [
        (TargetBreakdown.Dimension.PROVINCE, f.province),
        (TargetBreakdown.Dimension.OCCUPATION, f.occupation),
        (TargetBreakdown.Dimension.PARTNER, _partner_code(f.partner)),
    ]
    chosen = [(dim, key) for dim, key in cuts if key]
    if not chosen:
        return target.active_target, target
    if len(chosen) == 1:
        quota = target.breakdowns.filter(dimension=chosen[0][0], key=chosen[0][1]).first()
        if quota is not None:
            return quota.active_target, target
    return None, target


def _partner_code(partner_id: int | None) -> str | None:
    if not partner_id:
        return None
    return Partner.objects.filter(pk=partner_id).values_list("code", flat=True).first()


def _month_end_days(year: int, last: date) -> list[tuple[int, date | None]]:
    """For each month of `year` up to `last`: the latest built day in that month."""
    built = (
        RollupDay.objects.filter(day__year=year, day__lte=last)
        .values_list("day__month")
        .annotate(d=Max("day"))
    )
    by_month = dict(built)
    return [(m, by_month.get(m)) for m in range(1, 13)]


def progress(f: Filters) -> Progress:
    """Every headline figure for the filters, as of f.as_of (the latest built day on or before
    it), with the target path and the projection; cached by the rollup and target state
    (reporting/cache.py)."""
    out = figures_cache.cached("progress", f, lambda: _progress(f), labels=False)
    out.filters = f.querystring()  # it names `as_of` unless it is today: not part of the key
    return out


def _progress(f: Filters) -> Progress:
    day = data_day(f.as_of)
    out = Progress(year=f.year, as_of=f.as_of, data_day=day, filters=f.querystring())
    qs = _rows(f)
    in_year = day is not None and day.year == f.year
    if in_year:
        assert day is not None
        sums = _sums(qs, day)
        out.registered, out.active = sums["registered"], sums["active"]
        out.grace, out.lapsed = sums["grace"], sums["lapsed"]
        out.new_registrations, out.reactivations = sums["new_registrations"], sums["reactivations"]
        out.lapses, out.payments = sums["lapses"], sums["payments"]
        out.collections = {
            "JKK": sums["collected_jkk"],
            "JKM": sums["collected_jkm"],
            "JHT": sums["collected_jht"],
            "other": sums["collected_other"],
            "total": sums["collected_total"],
        }
        out.active_rate = round(out.active / out.registered, 4) if out.registered else None
    else:
        out.collections = {"JKK": 0, "JKM": 0, "JHT": 0, "other": 0, "total": 0}
    target_value, target = year_target(f)
    out.target = target_value
    out.starting_point = _starting_point(
        f,
        qs,
        target,
        national=target_value is not None
        and target is not None
        and target_value == target.active_target
        and not (f.province or f.occupation or f.partner),
    )
    # Run rate: the last 3 months (or since the first built day, if less).
    rate = None
    if in_year:
        assert day is not None
        before_day = data_day(_minus_months(day, 3)) or (
            RollupDay.objects.order_by("day").values_list("day", flat=True).first()
        )
        if before_day is not None and before_day < day:
            active_before = _sums(qs, before_day)["active"]
            months = (day - before_day).days / projection.DAYS_PER_MONTH
            rate = projection.run_rate(
                active_now=out.active, active_before=active_before, months=months
            )
    proj = projection.project(
        target=target_value,
        active=out.active,
        rate=rate,
        as_of=day if in_year and day else f.as_of,
        year=f.year,
        has_data=in_year,
    )
    out.projection = asdict(proj)
    out.series = _series(
        f, qs, day if in_year else None, target_value, target, out.starting_point, proj
    )
    return out


def _minus_months(day: date, months: int) -> date:
    first = add_months(day.replace(day=1), -months)
    return first.replace(day=min(day.day, calendar.monthrange(first.year, first.month)[1]))


def _starting_point(
    f: Filters, qs: QuerySet[ProvinceRollup], target: Target | None, national: bool
) -> int:
    if national and target is not None and target.starting_point is not None:
        return target.starting_point
    prev_end = data_day(date(f.year - 1, 12, 31))
    if prev_end is not None and prev_end.year == f.year - 1:
        return _sums(qs, prev_end)["active"]
    first = RollupDay.objects.filter(day__year=f.year).order_by("day").first()
    return _sums(qs, first.day)["active"] if first else 0


def _series(
    f: Filters,
    qs: QuerySet[ProvinceRollup],
    day: date | None,
    target_value: int | None,
    target: Target | None,
    start: int,
    proj: projection.Projection,
) -> list[dict[str, Any]]:
    months = _month_end_days(f.year, day) if day else [(m, None) for m in range(1, 13)]
    days = [d for _m, d in months if d is not None]
    actual = (
        dict(qs.filter(day__in=days).values_list("day").annotate(a=Sum("active")).order_by())
        if days
        else {}
    )
    path: list[int] | None = None
    if target_value is not None:
        milestones = (
            {m.month: m.active for m in target.milestones.all()}
            if target is not None
            and target_value == target.active_target
            and not (f.province or f.occupation or f.partner)
            else {}
        )
        path = target_path(active_target=target_value, starting_point=start, milestones=milestones)
    rows = []
    for month, d in months:
        value = int(actual.get(d, 0)) if d is not None else None
        projected = None
        if day is not None and proj.run_rate is not None and month >= day.month:
            month_end = date(f.year, month, calendar.monthrange(f.year, month)[1])
            ahead = max(0, (month_end - day).days) / projection.DAYS_PER_MONTH
            projected = max(0, round(proj.active + proj.run_rate * ahead))
        rows.append(
            {
                "month": f"{f.year}-{month:02d}",
                "actual": value,
                "target": path[month - 1] if path else None,
                "projected": projected,
            }
        )
    return rows


# --- breakdowns ---------------------------------------------------------------------------------
DIMENSIONS = ("province", "regency", "occupation", "channel", "partner", "sex", "age_band")
_DIM_FIELD = {
    "province": "province_id",
    "regency": "regency_id",
    "occupation": "occupation_id",
    "channel": "channel",
    "partner": "partner_id",
    "sex": "sex",
    "age_band": "age_band",
}


def breakdown(f: Filters, dimension: str) -> list[dict[str, Any]]:
    """One row per value of `dimension` at the data day: stocks, year-to-date flows, active
    rate; for provinces (and occupations, partners) the quota and the gap. Sorted by gap when
    there are quotas, else by active participants. Cached like `progress`."""
    if dimension not in _DIM_FIELD:
        raise ValueError(dimension)
    return figures_cache.cached("breakdown", f, lambda: _breakdown(f, dimension), dimension)


def _breakdown(f: Filters, dimension: str) -> list[dict[str, Any]]:
    day = data_day(f.as_of)
    if day is None or day.year != f.year:
        return []
    col = _DIM_FIELD[dimension]
    fields: dict[str, Sum] = {s: Sum(s) for s in STOCKS}
    if dimension in ("sex", "age_band"):  # stocks only, from the demographic rollup
        got = _rows(f, DemographicRollup).filter(day=day).values(col).annotate(**fields).order_by()
    else:
        fields |= {
            "new_registrations": Sum("ytd_new_registrations"),
            "reactivations": Sum("ytd_reactivations"),
            "lapses": Sum("ytd_lapses"),
            "collected_total": Sum("ytd_collected_total"),
        }
        model = DailyRollup if dimension == "regency" else ProvinceRollup
        got = _rows(f, model).filter(day=day).values(col).annotate(**fields).order_by()
    labels = _labels(dimension, [g[col] for g in got])
    quotas = _quotas(f, dimension)
    rows = []
    for g in got:
        key = g[col]
        row: dict[str, Any] = {
            "key": "" if key is None else str(key),
            "label": labels.get(key, str(key) if key else _none_label()),
        }
        row |= {k: int(g[k] or 0) for k in fields}
        for k in ("new_registrations", "reactivations", "lapses", "collected_total"):
            row.setdefault(k, None)
        row["active_rate"] = (
            round(row["active"] / row["registered"], 4) if row["registered"] else None
        )
        quota_key = _quota_key(dimension, key)
        row["target"] = quotas.get(quota_key) if quota_key else None
        row["gap"] = row["target"] - row["active"] if row["target"] is not None else None
        rows.append(row)
    if any(r["target"] is not None for r in rows):
        rows.sort(key=lambda r: (-(r["gap"] if r["gap"] is not None else -(10**15)), r["label"]))
    else:
        rows.sort(key=lambda r: (-r["active"], r["label"]))
    return rows


def _none_label() -> str:
    return str(_("None"))


def _quota_key(dimension: str, key: Any) -> str | None:
    if key is None:
        return None
    if dimension == "partner":
        return _partner_codes().get(int(key))
    return str(key) if dimension in ("province", "occupation") else None


def _partner_codes() -> dict[int, str]:
    return dict(Partner.objects.values_list("id", "code"))


def _quotas(f: Filters, dimension: str) -> dict[str, int]:
    if dimension not in ("province", "occupation", "partner"):
        return {}
    return dict(
        TargetBreakdown.objects.filter(target__year=f.year, dimension=dimension).values_list(
            "key", "active_target"
        )
    )


def _labels(dimension: str, keys: list[Any]) -> dict[Any, str]:
    present = [k for k in keys if k is not None]
    if dimension in ("province", "regency"):
        return dict(Region.objects.filter(code__in=present).values_list("code", "name"))
    if dimension == "occupation":
        lang = _language()
        return {o.code: o.localized_name(lang) for o in Occupation.objects.filter(code__in=present)}
    if dimension == "partner":
        return dict(Partner.objects.filter(pk__in=present).values_list("id", "name"))
    if dimension == "channel":
        return {k: str(v) for k, v in Participant.Channel.choices}
    if dimension == "sex":
        return {k: str(v) for k, v in Participant.Sex.choices}
    return {k: k for k in present}


def _language() -> str:
    return get_language() or "id"


def region_dimension(f: Filters) -> str:
    """The geographic table: provinces nationally, the regencies of a filtered province."""
    return "regency" if f.province else "province"


PAGE_TABLES = ("region", "occupation", "channel", "partner", "sex", "age_band")


def page_figures(f: Filters) -> tuple[Progress, dict[str, list[dict[str, Any]]]]:
    """The dashboard page's figures: the headline (`progress`) and every breakdown table, one
    cache entry for the page (one look-up of the state instead of seven)."""

    def compute() -> tuple[Progress, dict[str, list[dict[str, Any]]]]:
        tables = {
            table: _breakdown(f, region_dimension(f) if table == "region" else table)
            for table in PAGE_TABLES
        }
        return _progress(f), tables

    progress, tables = figures_cache.cached("page", f, compute)
    progress.filters = f.querystring()
    return progress, tables


# --- payer types --------------------------------------------------------------------------------
PAYER_GROUP_LABELS = {
    "self": _("Self-paid"),
    "sponsored": _("Sponsored (company, partner)"),
    "budget": _("Budget-paid (APBD, APBN, village fund)"),
}


def payer_split(f: Filters) -> list[dict[str, Any]]:
    """Who pays for today's participants: registered, active, grace and lapsed counts by payer
    group (self-paid, sponsored, budget-paid; enrollment.PAYER_GROUPS) and by payer type, of the
    participants the filters select. From the current coverage rows (Coverage.payer_type: the
    payer of the latest payment not reversed), so it is the state now, not as of a past day:
    the rollups do not keep a payer dimension. Cached like the other figures."""
    return figures_cache.cached("payers", f, lambda: _payer_split(f))


def _payer_split(f: Filters) -> list[dict[str, Any]]:
    qs = _filtered(Coverage.objects.all(), f, "participant__")
    counts: dict[str, dict[str, int]] = {}
    for payer_type, status, n in (
        qs.values_list("payer_type", "status").annotate(n=Count("pk")).order_by()
    ):
        counts.setdefault(payer_type, {})[status] = n
    labels = dict(PayerType.choices)
    rows = []
    for group, types in PAYER_GROUPS.items():
        members = []
        for t in types:
            c = counts.get(t, {})
            members.append(_payer_row(f"{group}:{t}", str(labels[t]), c, group))
        total = {s: sum(m[s] for m in members) for s in ("active", "grace", "lapsed")}
        rows.append(_payer_row(group, str(PAYER_GROUP_LABELS[group]), total, group))
        rows += members
    return rows


def _payer_row(key: str, label: str, c: dict[str, int], group: str) -> dict[str, Any]:
    active, grace, lapsed = (int(c.get(s, 0)) for s in ("active", "grace", "lapsed"))
    registered = active + grace + lapsed
    return {
        "key": key,
        "label": label,
        "group": group,
        "is_group": ":" not in key,
        "registered": registered,
        "active": active,
        "grace": grace,
        "lapsed": lapsed,
        "active_rate": round(active / registered, 4) if registered else None,
    }


# --- league tables --------------------------------------------------------------------------------
@dataclass
class League:
    rows: list[dict[str, Any]]
    total: int  # agents in the scope; more than len(rows) when limited


def league(f: Filters, scope: Scope) -> list[dict[str, Any]]:
    """Agents ranked by new registrations this year, then collections; scoped to the branch
    (supervisors, agents), the province (regional admins) or everyone (admins)."""
    return league_top(f, scope, limit=None).rows


def league_top(f: Filters, scope: Scope, *, limit: int | None) -> League:
    """The league table's first `limit` ranks (all when None) and the number of agents: the
    page shows the top of a national table of thousands of agents, the export all of it."""
    day = data_day(f.as_of)
    if day is None or day.year != f.year:
        return League([], 0)
    qs = AgentRollup.objects.filter(day=day)
    if scope.league_branch is not None and not scope.league_all:
        qs = qs.filter(branch_id=scope.league_branch)
    elif scope.province:
        qs = qs.filter(province_id=scope.province)
    elif not scope.league_all:
        return League([], 0)
    if f.province and scope.league_all:
        qs = qs.filter(province_id=f.province)
    ranked = list(
        qs.order_by("-ytd_new_registrations", "-ytd_collected_total", "agent_id")[:limit]
        if limit is not None
        else qs.order_by("-ytd_new_registrations", "-ytd_collected_total", "agent_id")
    )
    total = qs.count() if limit is not None and len(ranked) == limit else len(ranked)
    names = {
        p.pk: (p.agent_code or "", p.user.get_username(), p.branch.name if p.branch else "")
        for p in StaffProfile.objects.filter(pk__in=[r.agent_id for r in ranked]).select_related(
            "user", "branch"
        )
    }
    rows = []
    for r in ranked:
        code, username, branch = names.get(r.agent_id, ("", str(r.agent_id), ""))
        rows.append(
            {
                "agent_id": r.agent_id,
                "agent_code": code,
                "username": username,
                "branch": branch,
                "registered": r.registered,
                "active": r.active,
                "new_registrations": r.ytd_new_registrations,
                "collected_total": r.ytd_collected_total,
                "active_rate": round(r.active / r.registered, 4) if r.registered else None,
            }
        )
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return League(rows, total)


def filter_choices(scope: Scope) -> dict[str, Any]:
    provinces = Region.objects.filter(level=1).order_by("name")
    if scope.province:
        provinces = provinces.filter(code=scope.province)
    return {
        "provinces": list(provinces.values_list("code", "name")),
        "occupations": [(o.code, o.localized_name(_language())) for o in Occupation.objects.all()],
        "partners": list(Partner.objects.values_list("id", "name")),
        "years": sorted(
            set(Target.objects.values_list("year", flat=True)) | {timezone.localdate().year},
            reverse=True,
        ),
    }
