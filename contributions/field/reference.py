"""What the field app keeps on the phone, built from the same tables and settings the server's
rules read - so the browser's checks and quotes (static/field/rules.js) are the server's:

- `reference_data(staff)`: the rules' figures (age limits, grace months, due day, holidays,
  the rate schedules with their income levels, the discount windows), the occupations, the
  agent's working area (the branch's province and its regencies) and every refusal message in
  both languages, with a `version` (a digest of the content) the phone compares;
- `area_regions(regency)`: one regency's districts and villages (loaded lazily, per area);
- `nik_prefixes()`: the known NIK district prefixes (current and historical);
- `own_participants(staff)`: the agent's participants with what the cash form needs to quote
  a payment as the server will (paid-through month, start month, credit, sector history).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Any

from django.conf import settings
from django.utils import timezone, translation

from enrollment import permissions
from enrollment.models import NikPrefix, Occupation, Region, StaffProfile
from enrollment.nik import MESSAGES as NIK_MESSAGES
from enrollment.nik import PROVINCE_CODES
from enrollment.services import ADDRESS_MAX, NAME_MAX, RULE_MESSAGES, sector_history

from .. import coverage as rules
from ..due_dates import due_day, holidays, skips_weekends
from ..models import Coverage
from ..rates import MAX_MONTHS, QUOTE_MESSAGES, rate_book

LANGUAGES = ("id", "en")


def messages() -> dict[str, dict[str, str]]:
    """Every message the offline rules can show, by language and code (templates keep their
    %(name)s placeholders; rules.js fills them as Python's % does)."""
    out: dict[str, dict[str, str]] = {}
    for language in LANGUAGES:
        with translation.override(language):
            out[language] = {
                code: str(text)
                for table in (NIK_MESSAGES, RULE_MESSAGES, QUOTE_MESSAGES)
                for code, text in table.items()
            }
    return out


def _digest(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def rules_data() -> dict[str, Any]:
    """The figures and tables of the rules (no agent-specific part): what the shared test
    vectors run against on both sides."""
    book = rate_book()
    return {
        "min_age": settings.BPU_MIN_AGE,
        "max_age": settings.BPU_MAX_AGE,
        "name_max": NAME_MAX,
        "address_max": ADDRESS_MAX,
        "province_codes": sorted(PROVINCE_CODES),
        "grace_months": rules.grace_months(),
        "due_day": due_day(),
        "due_skips_weekends": skips_weekends(),
        "holidays": sorted(d.isoformat() for d in holidays()),
        "max_months": MAX_MONTHS,
        "payment_max_age_days": settings.PAYMENT_MAX_AGE_DAYS,
        "schedules": [
            {
                "effective_from": s.effective_from.isoformat(),
                "jkk_rate_bp": s.jkk_rate_bp,
                "jkm_monthly": s.jkm_monthly,
                "jht_rate_bp": s.jht_rate_bp,
                "levels": list(s.levels),
            }
            for s in book.schedules
        ],
        "discounts": [
            {
                "sector": d.sector,
                "programmes": list(d.programmes),
                "percent": d.percent,
                "first_month": d.first_month.isoformat(),
                "last_month": d.last_month.isoformat(),
                "excluded_payer_types": list(d.excluded_payer_types),
            }
            for d in book.discounts
        ],
        "occupations": [
            {"code": o.code, "name_id": o.name_id, "name_en": o.name_en, "sector": o.sector}
            for o in Occupation.objects.order_by("sort_order", "code")
        ],
        "messages": messages(),
    }


def working_area(staff: StaffProfile) -> dict[str, Any]:
    """The agent's branch province and its regencies (the villages come per regency)."""
    branch = staff.branch
    province = branch.province if branch is not None else None
    if province is None:
        return {"branch": None, "province": None, "regencies": []}
    regencies = Region.objects.filter(parent=province, level=Region.Level.REGENCY).order_by("code")
    return {
        "branch": {"code": branch.code, "name": branch.name} if branch else None,
        "province": {"code": province.code, "name": province.name},
        "regencies": [{"code": r.code, "name": r.name} for r in regencies],
    }


def reference_data(staff: StaffProfile) -> dict[str, Any]:
    payload = {"rules": rules_data(), "area": working_area(staff)}
    return {
        "version": _digest(payload),
        "generated_at": timezone.now().isoformat(),
        "max_age_hours": settings.FIELD_REFERENCE_MAX_AGE_HOURS,
        **payload,
    }


def area_regions(regency: Region) -> dict[str, Any]:
    """A regency's districts, each with its villages: [code, name] pairs, by code."""
    districts = Region.objects.filter(parent=regency, level=Region.Level.DISTRICT).order_by("code")
    villages: dict[str, list[list[str]]] = {}
    for code, name, parent in (
        Region.objects.filter(parent__parent=regency, level=Region.Level.VILLAGE)
        .order_by("code")
        .values_list("code", "name", "parent_id")
    ):
        villages.setdefault(parent, []).append([code, name])
    body = {
        "regency": {"code": regency.code, "name": regency.name},
        "districts": [
            {"code": d.code, "name": d.name, "villages": villages.get(d.code, [])}
            for d in districts
        ],
    }
    return {"version": _digest(body), **body}


def nik_prefixes() -> dict[str, Any]:
    codes = sorted(NikPrefix.objects.values_list("code", flat=True))
    return {"version": _digest({"codes": codes}), "codes": codes}


def _month(value: date | None) -> str | None:
    return value.isoformat() if value else None


def own_participants(staff: StaffProfile, limit: int) -> list[dict[str, Any]]:
    """The agent's participants (permissions: `view_participants` in the agent's scope), most
    recent first, with what the offline cash form quotes from. The NIK as the agent sees it."""
    user = staff.user
    qs = (
        permissions.participants_in_scope(user, "record_payment")
        .select_related("occupation", "village")
        .order_by("-created_at", "-id")[:limit]
    )
    people = list(qs)
    ids = [p.pk for p in people]
    covs = {c.pk: c for c in Coverage.objects.filter(pk__in=ids)}
    history = sector_history(ids)
    today = timezone.localdate()
    out = []
    for p in people:
        cov = covs.get(p.pk)
        start = cov.start_month if cov else rules.month_start(timezone.localdate(p.created_at))
        paid_through = cov.paid_through if cov else None
        out.append(
            {
                "id": p.pk,
                "kpj": p.kpj_number,
                "nik": p.masked_nik,
                "name": p.full_name,
                "phone": p.phone,
                "village": p.village.name,
                "occupation": p.occupation_id,
                "sector": p.occupation.sector,
                "income": p.declared_income,
                "programmes": p.programmes,
                "start_month": _month(start),
                "paid_through": _month(paid_through),
                "credit": cov.credit if cov else 0,
                "history": [[until.isoformat(), sector] for until, sector in history.get(p.pk, ())],
                "status": rules.status_for(
                    paid_through=paid_through, start_month=start, as_of=today
                ),
                "registered_at": p.created_at.isoformat(),
            }
        )
    return out
