"""What each API client may see and write. The rules themselves are rows of the roles table in
enrollment/permissions.py (columns api:admin, api:partner, api:channel, api:agent):

- admin: reads everything, writes anything (full NIK in lists);
- partner: the participants it registered (partner = it), writes only those; it may also pay
  for (and look up the dues of) participants who consented to be sponsored by it, through the
  filter contributions registers (contributions/sponsorship.py);
- channel: posts payments; looks up what one participant owes, by the exact KPJ or NIK it was
  given (a masked name and the amount, counted against a daily limit: lookups.py);
- agent: acts as its agent — the participants that agent registered.
Outside the scope is a 404, never a 403, so a client cannot probe which ids exist.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import QuerySet

from .. import permissions
from ..models import ApiClient, Participant
from ..permissions import Scope, register_partner_filter

__all__ = [
    "decorate_participants",
    "may_register",
    "may_sync_participants",
    "participant_by_key_for",
    "participants_for",
    "register_participant_decorator",
    "register_partner_filter",
    "sees_full_nik",
]

ParticipantDecorator = Callable[[QuerySet[Participant]], QuerySet[Participant]]

_participant_decorators: list[ParticipantDecorator] = []


def register_participant_decorator(decorate: ParticipantDecorator) -> None:
    """A higher app annotates participant querysets (contributions: coverage status)."""
    if decorate not in _participant_decorators:
        _participant_decorators.append(decorate)


def decorate_participants(qs: QuerySet[Participant]) -> QuerySet[Participant]:
    for decorate in _participant_decorators:
        qs = decorate(qs)
    return qs


def participants_for(client: ApiClient, action: str = "view_participants") -> QuerySet[Participant]:
    """Participants the client may read (or `action` on) by id, list and sync (channel: none
    by id)."""
    return permissions.participants_in_scope(client, action)


def participant_by_key_for(
    client: ApiClient, *, kpj: str = "", nik: str = "", action: str = "view_participants"
) -> QuerySet[Participant]:
    """Participants matching an exact KPJ or NIK the client was given (channel look-ups)."""
    return permissions.participants_by_key(client, action, kpj=kpj, nik=nik)


def sees_full_nik(client: ApiClient) -> bool:
    return permissions.can(client, "see_full_nik")


def may_register(client: ApiClient) -> bool:
    return permissions.can(client, "register_participant")


def may_sync_participants(client: ApiClient) -> bool:
    return permissions.scope_of(client, "view_participants") not in (Scope.KEY, Scope.NONE)
