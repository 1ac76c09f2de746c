"""Demo data for `make run`: branches, staff logins, partners and registered workers.

Every worker is registered through the real service, so the demo obeys every rule.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import hooks
from .errors import RegistrationError
from .models import Branch, Occupation, Participant, Partner, PayerType, Region, StaffProfile
from .nik import build_nik
from .services import register_participant

DEMO_PASSWORD = "demo-pass-2024"  # noqa: S105 - published demo login, never in production
# The demo admins' TOTP key (two-factor login is required for admins and regional admins):
# published like the password, so `make run` stays usable. In base32 for authenticator apps:
# GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ; `manage.py demo_totp admin` prints the current code.
DEMO_TOTP_KEY = "3132333435363738393031323334353637383930"  # RFC 6238's test key, demo only
DEMO_TOTP_USERS = ("admin", "jabar")
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
PARTNERS = [
    ("COMBOFIT", "ComboFit Jamsostek", Partner.Kind.BUNDLE),
    ("GNLINGKARAN", "GN Lingkaran", Partner.Kind.SPONSOR),
    ("SERTAKAN", "Fita Sertakan", Partner.Kind.SPONSOR),
    # a regency paying for vulnerable workers from its APBD: budget-paid, no PP 50/2025 discount
    ("PEMKAB-PPU", "Pemkab Penajam Paser Utara", Partner.Kind.SPONSOR),
]
PAYER_TYPES = {"COMBOFIT": PayerType.PARTNER, "PEMKAB-PPU": PayerType.APBD}
FIRST = [
    "Budi",
    "Siti",
    "Agus",
    "Dewi",
    "Made",
    "Wayan",
    "Rina",
    "Joko",
    "Nur",
    "Andi",
    "Putri",
    "Yohanes",
    "Ketut",
    "Fitri",
    "Rahmat",
    "Sri",
    "Hendra",
    "Lestari",
]
LAST = [
    "Santoso",
    "Rahayu",
    "Hidayat",
    "Saputra",
    "Wijaya",
    "Nugroho",
    "Lubis",
    "Siregar",
    "Pratama",
    "Kurniawan",
    "Susanti",
    "Daeng",
]
FEMALE = {"Siti", "Dewi", "Rina", "Nur", "Putri", "Fitri", "Sri", "Lestari"}


@transaction.atomic
def seed_demo(participants_per_agent: int = 40, seed: int = 2024) -> dict[str, int]:
    rng = random.Random(seed)
    user_model = get_user_model()
    branches = {}
    for code, name, province in BRANCHES:
        branches[code], _ = Branch.objects.get_or_create(
            code=code, defaults={"name": name, "province_id": province}
        )
    profiles = {}
    for username, role, branch, agent_code in STAFF:
        user, new_user = user_model.objects.get_or_create(username=username)
        if new_user:
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

    created: int = 0
    occupations = list(Occupation.objects.all())
    weights = [
        30
        if o.code == "petani"
        else 18
        if o.code == "pedagang"
        else 12
        if o.code == "ojol"
        else 9
        if o.code == "nelayan"
        else 2
        for o in occupations
    ]
    levels = hooks.income_levels(timezone.localdate())[:8] or [1_000_000]
    for username in ("agent1", "agent2", "agent3"):
        profile = profiles[username]
        assert profile.branch is not None
        province = profile.branch.province_id
        if Participant.objects.filter(registered_by=profile).count() >= participants_per_agent:
            continue
        districts = list(
            Region.objects.filter(level=3, code__startswith=province + ".").values_list(
                "code", flat=True
            )
        )
        for _ in range(participants_per_agent):
            first = rng.choice(FIRST)
            sex = "F" if first in FEMALE else "M"
            born = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 45))
            district = rng.choice(districts)
            village = Region.objects.filter(parent_id=district).order_by("code").first()
            if village is None:
                continue
            nik = build_nik(district.replace(".", ""), born, sex, rng.randrange(1, 9999))
            try:
                register_participant(
                    nik=nik,
                    full_name=f"{first} {rng.choice(LAST)}",
                    birth_date=born,
                    sex=sex,
                    phone=f"0812{rng.randrange(10_000_000, 99_999_999)}",
                    village=village,
                    address=f"Jl. Melati No. {rng.randrange(1, 200)}, RT 0{rng.randrange(1, 9)}",
                    occupation=rng.choices(occupations, weights)[0],
                    declared_income=rng.choice(levels),
                    jht=rng.random() < 0.3,
                    channel=Participant.Channel.AGENT,
                    registered_by=profile,
                    consent_data=True,
                    consent_reminders=rng.random() < 0.9,
                )
                created += 1
            except RegistrationError:
                continue  # e.g. a random NIK that collides; the demo just skips it
    return {"participants_created": created}
