"""Read paths of enrollment shared by pages, admin and API."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Upper
from django.utils import timezone

from . import permissions
from .models import Participant, Region, StaffProfile, nik_q


def staff_profile(user: AbstractBaseUser | AnonymousUser) -> StaffProfile | None:
    return permissions.staff_profile(user)


def participants_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Participant]:
    """The participants a user may see: an agent the workers they registered, a supervisor their
    branch, a regional admin their province, an admin (or superuser) everyone; anyone else
    nothing (the `view_participants` row of enrollment/permissions.py). Outside is a 404."""
    return permissions.participants_in_scope(user, "view_participants")


def is_nik_term(term: str) -> bool:
    return len(term) == 16 and term.isascii() and term.isdigit()


def search_by_nik(
    queryset: QuerySet[Any], term: str, participant_path: str = ""
) -> QuerySet[Any] | None:
    """A 16-digit search term is a NIK: match it through the digest index (the NIK is stored
    encrypted, so admin search_fields cannot). None when the term is not a NIK."""
    term = term.strip()
    if not is_nik_term(term):
        return None
    return queryset.filter(nik_q(term, participant_path))


def search_participants(qs: QuerySet[Participant], term: str) -> QuerySet[Participant]:
    term = " ".join((term or "").split())[:100]
    if not term:
        return qs
    if is_nik_term(term):
        return qs.filter(nik_q(term))
    if term.isdigit() and len(term) == 11:
        return qs.filter(kpj_number=term)
    return qs.filter(Q(full_name__icontains=term) | Q(kpj_number__startswith=term))


def registration_counts(profile: StaffProfile) -> dict[str, int]:
    now = timezone.localtime()
    day_start = timezone.make_aware(datetime.combine(now.date(), time.min))
    month_start = day_start.replace(day=1)
    mine = Participant.objects.filter(registered_by=profile)
    return {
        "today": mine.filter(created_at__gte=day_start).count(),
        "month": mine.filter(created_at__gte=month_start).count(),
        "total": mine.count(),
    }


def likely_duplicates(participant: Participant) -> QuerySet[Participant]:
    """Same name (case-insensitive) + birth date + village under another NIK: warn, don't block."""
    return (
        Participant.objects.annotate(name_upper=Upper("full_name"))
        .filter(
            name_upper=participant.full_name.upper(),
            birth_date=participant.birth_date,
            village_id=participant.village_id,
        )
        .exclude(pk=participant.pk)
    )


def region_children(parent_code: str | None, level: int) -> QuerySet[Region]:
    qs = Region.objects.filter(level=level).only("code", "name", "level").order_by("name")
    if parent_code:
        qs = qs.filter(parent_id=parent_code)
    return qs


def branch_agents(profile: StaffProfile) -> QuerySet[StaffProfile]:
    """A supervisor's agents with their registrations this month and in total."""
    month_start = timezone.make_aware(
        datetime.combine(timezone.localdate().replace(day=1), time.min)
    )
    return (
        StaffProfile.objects.filter(branch=profile.branch, role=StaffProfile.Role.AGENT)
        .select_related("user")
        .annotate(
            month_count=Count(
                "registrations", filter=Q(registrations__created_at__gte=month_start)
            ),
            total_count=Count("registrations"),
        )
        .order_by("-month_count", "user__username")
    )
