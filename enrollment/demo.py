"""Demo data for `make run` (`manage.py seed_demo`): a small country with a history.

The demo is a list of ordered steps (`register_step`): this app's (the logins, the workers),
then the higher apps' (payments, ledger and coverage; commission statements; follow-up
outcomes; rollups and targets), each in its own transaction, each skipped when its data is
already there - so running the command twice adds nothing. A new step (e.g. one more rollup)
is one `register_step(order, name, function)` call in its app's `ready()`.

The workers follow the national shape of the scale generator (enrollment/shape.py, shared with
bench/generate.py): provinces by population, farmers the largest group, 60 % brought by
agents, registrations spread over the last `months` months leaning to recent ones. They are
registered through the bulk registration service (every rule checked), then dated back to their
registration day. The named demo agents (agent1-3) work a few districts of their branch each,
beside generated agents in every province; their portfolios are hundreds of workers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import hooks, pii, shape, unique_keys
from .kpj import next_kpj_numbers
from .models import (
    Branch,
    NikPrefix,
    Participant,
    Partner,
    PayerType,
    Region,
    StaffProfile,
)
from .nik import build_nik

DEMO_PASSWORD = "demo-pass-2024"  # noqa: S105 - published demo login, never in production
# The demo admins' TOTP key (two-factor login is required for admins and regional admins):
# published like the password, so `make run` stays usable. In base32 for authenticator apps:
# GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ; `manage.py demo_totp admin` prints the current code.
DEMO_TOTP_KEY = "3132333435363738393031323334353637383930"  # RFC 6238's test key, demo only
DEMO_TOTP_USERS = ("admin", "jabar")
DEMO_SEED = 2024
DEMO_MONTHS = 18
BRANCHES = [
    ("BDG", "Bandung Suci", "32"),
    ("SBY", "Surabaya Rungkut", "35"),
    ("MKS", "Makassar", "73"),
]
STAFF = [
    ("admin", StaffProfile.Role.ADMIN, None, None),
    ("supervisor", StaffProfile.Role.SUPERVISOR, "BDG", None),
    ("jabar", StaffProfile.Role.REGIONAL_ADMIN, None, None),
    ("agent1", StaffProfile.Role.AGENT, "BDG", "PRS-0001"),
    ("agent2", StaffProfile.Role.AGENT, "BDG", "PRS-0002"),
    ("agent3", StaffProfile.Role.AGENT, "SBY", "PRS-0003"),
]
# Where the named agents work: the first districts of a regency (Kabupaten Bandung, Kota
# Bandung, Kota Surabaya).
NAMED_AGENTS = {"agent1": "32.04", "agent2": "32.73", "agent3": "35.78"}
DISTRICTS_PER_AGENT = 4
# The demo's workers live in a few regencies of each province: the branches' (Kota Makassar
# besides the named agents') and random others up to REGENCIES_PER_PROVINCE.
DEMO_REGENCIES = [*NAMED_AGENTS.values(), "73.71"]
REGENCIES_PER_PROVINCE = 2
# Agents per province: one per this many million inhabitants (at least one).
AGENT_PER_MILLION = 8.0
PARTNERS = [
    ("COMBOFIT", "ComboFit Jamsostek", Partner.Kind.BUNDLE),
    ("GNLINGKARAN", "GN Lingkaran", Partner.Kind.SPONSOR),
    ("SERTAKAN", "Fita Sertakan", Partner.Kind.SPONSOR),
    # a regency paying for vulnerable workers from its APBD: budget-paid, no PP 50/2025 discount
    ("PEMKAB-PPU", "Pemkab Penajam Paser Utara", Partner.Kind.SPONSOR),
]
PAYER_TYPES = {"COMBOFIT": PayerType.PARTNER, "PEMKAB-PPU": PayerType.APBD}


# --- the ordered steps ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoContext:
    """What every step knows: the demo's today, its size, its history and its random seed."""

    today: date
    workers: int
    months: int = DEMO_MONTHS
    seed: int = DEMO_SEED
    now: datetime = field(default_factory=timezone.now)

    @property
    def first_day(self) -> date:
        """The first registration day: `months` months before today."""
        total = self.today.year * 12 + self.today.month - 1 - self.months
        first = date(total // 12, total % 12 + 1, 1)
        return first + timedelta(days=min(self.today.day, 28) - 1)


@dataclass(frozen=True)
class DemoStep:
    order: int
    name: str
    run: Callable[[DemoContext], dict[str, int]]


_steps: dict[str, DemoStep] = {}


def register_step(order: int, name: str, run: Callable[[DemoContext], dict[str, int]]) -> None:
    """Add a step to the demo (from an AppConfig.ready); steps run by `order`, then name."""
    _steps[name] = DemoStep(order, name, run)


def demo_steps() -> list[DemoStep]:
    return sorted(_steps.values(), key=lambda s: (s.order, s.name))


def run_demo(
    ctx: DemoContext, *, report: Callable[[DemoStep, dict[str, int], float], None] | None = None
) -> dict[str, dict[str, int]]:
    """Run every step in order; each commits on its own (a later step may read with other
    connections, e.g. the parallel rollup build)."""
    results: dict[str, dict[str, int]] = {}
    for step in demo_steps():
        started = time.monotonic()
        results[step.name] = step.run(ctx)
        if report is not None:
            report(step, results[step.name], time.monotonic() - started)
    return results


_bulk_sessions: list[Callable[[Any], None]] = []


def register_bulk_session(setup: Callable[[Any], None]) -> None:
    """A higher layer's set-up for the demo's bulk loads of synthetic rows (the audit app
    registers `skip_audit_triggers`: synthetic rows are not audited, as for the benchmark
    generators; everything the demo writes through a service stays audited)."""
    if setup not in _bulk_sessions:
        _bulk_sessions.append(setup)


def bulk_session(cursor: Any) -> None:
    """Call inside a step's transaction, before its bulk writes of synthetic rows."""
    for setup in _bulk_sessions:
        setup(cursor)


# --- step 1: branches, logins, partners ------------------------------------------------------
@transaction.atomic
def seed_demo(participants_per_agent: int = 0) -> dict[str, int]:
    """The demo's branches, logins (published password and TOTP key) and partners; idempotent.
    (Its name and argument are kept for the callers that need only the logins: the workers come
    from the `workers` step of `run_demo`.)"""
    if participants_per_agent:
        raise ValueError("demo workers come from run_demo(DemoContext(workers=...))")
    user_model = get_user_model()
    branches = {}
    for code, name, province in BRANCHES:
        branches[code], _ = Branch.objects.get_or_create(
            code=code, defaults={"name": name, "province_id": province}
        )
    profiles = {}
    created = 0
    for username, role, branch, agent_code in STAFF:
        user, new_user = user_model.objects.get_or_create(username=username)
        if new_user:
            created += 1
            user.set_password(DEMO_PASSWORD)
            user.is_staff = role == StaffProfile.Role.ADMIN
            user.is_superuser = role == StaffProfile.Role.ADMIN
            user.save()
        profiles[username], _ = StaffProfile.objects.get_or_create(
            user=user,
            defaults={
                "role": role,
                "branch": branches.get(branch or ""),
                "agent_code": agent_code,
                # the regional admin of West Java (province 32)
                "province_id": "32" if role == StaffProfile.Role.REGIONAL_ADMIN else None,
            },
        )
    for username in DEMO_TOTP_USERS:
        TOTPDevice.objects.get_or_create(
            user=profiles[username].user,
            name="demo",
            defaults={"key": DEMO_TOTP_KEY, "confirmed": True},
        )
    for code, name, kind in PARTNERS:
        Partner.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "payer_type": PAYER_TYPES.get(code, PayerType.SPONSOR),
            },
        )
    return {"logins_created": created}


def _logins_step(_ctx: DemoContext) -> dict[str, int]:
    return seed_demo()


# --- step 2: the workers ---------------------------------------------------------------------
@dataclass
class _Geography:
    """Districts (with villages and a known NIK prefix) and villages, by province."""

    districts: dict[str, list[str]]
    villages: dict[str, list[str]]

    @classmethod
    def load(cls) -> _Geography:
        prefixes = set(NikPrefix.objects.values_list("code", flat=True))
        villages: dict[str, list[str]] = {}
        rows = Region.objects.filter(level=Region.Level.VILLAGE).order_by("code")
        for code, parent in rows.values_list("code", "parent_id"):
            if parent and parent.replace(".", "") in prefixes:
                villages.setdefault(parent, []).append(code)
        districts: dict[str, list[str]] = {}
        for district in sorted(villages):
            districts.setdefault(district[:2], []).append(district)
        return cls(districts=districts, villages=villages)

    def concentrate(self, rng: random.Random) -> None:
        """Keep REGENCIES_PER_PROVINCE regencies of each province (the named agents' and a
        random few): a demo-sized country, and rollups with demo-sized groups."""
        for province, districts in self.districts.items():
            regencies = sorted({d[:5] for d in districts})
            keep = [r for r in DEMO_REGENCIES if r[:2] == province and r in regencies]
            rest = [r for r in regencies if r not in keep]
            keep += rng.sample(rest, max(0, min(len(rest), REGENCIES_PER_PROVINCE - len(keep))))
            self.districts[province] = [d for d in districts if d[:5] in keep]


def demo_agents(
    geo: _Geography, rng: random.Random
) -> dict[str, list[tuple[StaffProfile, list[str]]]]:
    """Every province's agents with the districts each works: the named demo agents in their
    branch's province, generated agents (no usable password) elsewhere and beside them.
    Idempotent: existing branches and agents are reused."""
    user_model = get_user_model()
    names = dict(Region.objects.filter(level=Region.Level.PROVINCE).values_list("code", "name"))
    named = {
        p.user.username: p
        for p in StaffProfile.objects.select_related("user", "branch").filter(
            user__username__in=list(NAMED_AGENTS)
        )
    }
    out: dict[str, list[tuple[StaffProfile, list[str]]]] = {}
    for province, population in shape.PROVINCE_POPULATION_M.items():
        districts = geo.districts.get(province, [])
        if not districts:
            continue
        agents: list[tuple[StaffProfile, list[str]]] = []
        for username, regency in NAMED_AGENTS.items():
            profile = named.get(username)
            if profile is None or profile.branch is None or profile.branch.province_id != province:
                continue
            own = [d for d in districts if d.startswith(regency + ".")] or districts
            agents.append((profile, own[:DISTRICTS_PER_AGENT]))
        branch = Branch.objects.filter(province_id=province).order_by("id").first()
        if branch is None:
            branch = Branch.objects.create(
                code=f"KC{province}",
                name=f"Kantor Cabang {names.get(province, province).title()}",
                province_id=province,
            )
        wanted = max(1, round(population / AGENT_PER_MILLION))
        for i in range(1, wanted - len(agents) + 1):
            user, new = user_model.objects.get_or_create(username=f"perisai-{province}-{i}")
            if new:
                user.set_unusable_password()
                user.save()
            profile, _ = StaffProfile.objects.get_or_create(
                user=user,
                defaults={
                    "role": StaffProfile.Role.AGENT,
                    "branch": branch,
                    "agent_code": f"PRS-{province}{i:02d}",
                },
            )
            agents.append(
                (profile, rng.sample(districts, min(DISTRICTS_PER_AGENT, len(districts))))
            )
        out[province] = agents
    return out


PARTICIPANT_COLUMNS = (
    "nik_digest", "nik_encrypted", "kpj_number", "full_name", "birth_date", "sex", "phone",
    "email", "language", "village_id", "province_id", "regency_id", "address", "occupation_id",
    "declared_income", "jht", "channel", "registered_by_id", "branch_id", "partner_id",
    "consent_data", "consent_reminders", "created_at", "updated_at",
)  # fmt: skip
# Mobile prefixes (Telkomsel, Indosat, XL, Smartfren): valid numbers by construction.
MOBILE_PREFIXES = ("811", "812", "813", "821", "852", "857", "877", "895")


def worker_rows(ctx: DemoContext, geo: _Geography, agents: dict[str, Any]) -> list[dict[str, Any]]:
    """`ctx.workers` workers of the national shape (enrollment/shape.py), deterministic for
    ctx.seed, oldest registration first. Valid by construction: the NIK carries the district
    of the village, the birth date and the sex (tests check them with the registration
    rules); the income is a level of the rate schedule over the whole history."""
    rng = random.Random(ctx.seed)
    r = rng.random
    today, first_day = ctx.today, ctx.first_day
    levels = sorted(
        set(hooks.income_levels(first_day)) & set(hooks.income_levels(today))
    ) or hooks.income_levels(today)
    incomes = shape.Weighted(shape.income_weights(levels))
    partners = list(
        Partner.objects.filter(code__in=[c for c, _n, _k in PARTNERS])
        .order_by("code")
        .values_list("pk", flat=True)
    )
    provinces = [p for p in shape.PROVINCE_POPULATION_M if p in agents]
    province_pick = shape.Weighted([(p, shape.PROVINCE_POPULATION_M[p]) for p in provinces])
    latest = timezone.localtime(ctx.now) - timedelta(hours=2)
    serials: dict[tuple[str, date, str], int] = {}
    rows: list[dict[str, Any]] = []
    for _ in range(ctx.workers):
        province = province_pick.pick(r())
        channel = shape.CHANNEL_PICK.pick(r())
        agent = None
        if channel == "agent":
            agent, districts = agents[province][int(r() * len(agents[province]))]
        else:
            districts = geo.districts[province]
        district = districts[int(r() * len(districts))]
        villages = geo.villages[district]
        village = villages[int(r() * len(villages))]
        sex = "F" if r() < shape.FEMALE_SHARE else "M"
        while True:
            born = shape.birth_date(r())
            key = (district, born, sex)
            serials[key] = serials.get(key, 0) + 1
            if serials[key] <= 9999:
                break
        day = shape.registration_day(r(), first_day, today)
        at = timezone.make_aware(datetime.combine(day, dtime(8))) + timedelta(
            seconds=int(r() * 9 * 3600)
        )
        rows.append(
            {
                "nik": build_nik(district.replace(".", ""), born, sex, serials[key]),
                "full_name": shape.full_name(r, sex),
                "birth_date": born,
                "sex": sex,
                "phone": f"+62{MOBILE_PREFIXES[int(r() * len(MOBILE_PREFIXES))]}"
                f"{rng.randrange(10_000_000, 99_999_999)}",
                "email": "",
                "language": "en" if r() < 0.03 else "id",
                "village_id": village,
                "province_id": province,
                "regency_id": village[:5],
                "address": f"Jl. Desa No. {1 + int(r() * 299)}, RT 0{1 + int(r() * 9)}",
                "occupation_id": shape.OCCUPATIONS.pick(r()),
                "declared_income": int(incomes.pick(r())),
                "jht": r() < shape.JHT_SHARE,
                "channel": channel,
                "registered_by_id": agent.pk if agent else None,
                "branch_id": agent.branch_id if agent else None,
                "partner_id": partners[int(r() * len(partners))]
                if channel == "partner" and partners
                else None,
                "consent_data": True,
                "consent_reminders": r() < 0.9,
                "created_at": min(at, latest),
            }
        )
    rows.sort(key=lambda row: row["created_at"])  # ids follow the registration order
    return rows


def seed_workers(ctx: DemoContext) -> dict[str, int]:
    """The workers (rows only: their coverage rows come with the payments step, which knows
    their history). Skipped (nothing written) when the database has participants already."""
    if ctx.workers <= 0 or Participant.objects.exists():
        return {"workers_created": 0}
    geo = _Geography.load()
    geo.concentrate(random.Random(ctx.seed - 1))
    with transaction.atomic():
        agents = demo_agents(geo, random.Random(ctx.seed - 2))
        rows = worker_rows(ctx, geo, agents)
        for row, kpj in zip(rows, next_kpj_numbers(len(rows)), strict=True):
            row["nik_digest"], row["nik_encrypted"] = pii.nik_columns(row["nik"])
            row["kpj_number"] = kpj
            row["updated_at"] = row["created_at"]
        with connection.cursor() as cursor:
            bulk_session(cursor)
            columns = ", ".join(PARTICIPANT_COLUMNS)
            with cursor.cursor.copy(f"COPY enrollment_participant ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in PARTICIPANT_COLUMNS])
        unique_keys.claim_stored("participants", after_id=0)  # the table was empty
    return {"workers_created": len(rows)}


def default_workers() -> int:
    return int(getattr(settings, "DEMO_WORKERS", 20_000))


register_step(10, "logins", _logins_step)
register_step(20, "workers", seed_workers)
