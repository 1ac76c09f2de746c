"""What each API client may see and write — the scope rules, in one place.

- admin: reads everything, writes anything (full NIK in lists);
- partner: the participants it registered (partner = it) or sponsors (a payment it paid, via
  the filter contributions registers), writes only those;
- channel: posts payments; reads a participant only by the exact KPJ or NIK it was given;
- agent: acts as its agent — the browser scope rule `participants_visible_to(agent.user)`.
Outside the scope is a 404, never a 403, so a client cannot probe which ids exist.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Q, QuerySet

from ..models import ApiClient, Participant, Partner, nik_q
from ..selectors import participants_visible_to

PartnerFilter = Callable[[Partner], Q]
ParticipantDecorator = Callable[[QuerySet[Participant]], QuerySet[Participant]]

_partner_filters: list[PartnerFilter] = []
_participant_decorators: list[ParticipantDecorator] = []


def register_partner_filter(build: PartnerFilter) -> None:
    """A higher app widens a partner's scope (contributions: participants it sponsored)."""
    if build not in _partner_filters:
        _partner_filters.append(build)


def register_participant_decorator(decorate: ParticipantDecorator) -> None:
    """A higher app annotates participant querysets (contributions: coverage status)."""
    if decorate not in _participant_decorators:
        _participant_decorators.append(decorate)


def decorate_participants(qs: QuerySet[Participant]) -> QuerySet[Participant]:
    for decorate in _participant_decorators:
        qs = decorate(qs)
    return qs


def participants_for(client: ApiClient) -> QuerySet[Participant]:
    """Participants the client may read by id, list and sync (channel: none by id)."""
    qs = Participant.objects.all()
    if client.scope == ApiClient.Scope.ADMIN:
        return qs
    if client.scope == ApiClient.Scope.PARTNER and client.partner is not None:
        condition = Q(partner=client.partner)
        for build in _partner_filters:
            condition |= build(client.partner)
        return qs.filter(condition)
    if client.scope == ApiClient.Scope.AGENT and client.agent is not None:
        return participants_visible_to(client.agent.user)
    return qs.none()


def participant_by_key_for(
    client: ApiClient, *, kpj: str = "", nik: str = ""
) -> QuerySet[Participant]:
    """Participants matching an exact KPJ or NIK the client was given (channel look-ups)."""
    base = (
        Participant.objects.all()
        if client.scope == ApiClient.Scope.CHANNEL
        else participants_for(client)
    )
    if kpj:
        return base.filter(kpj_number=kpj)
    if nik:
        return base.filter(nik_q(nik))
    return base.none()


def sees_full_nik(client: ApiClient) -> bool:
    return client.scope == ApiClient.Scope.ADMIN


def may_register(client: ApiClient) -> bool:
    return client.scope in (ApiClient.Scope.ADMIN, ApiClient.Scope.PARTNER, ApiClient.Scope.AGENT)


def may_sync_participants(client: ApiClient) -> bool:
    return client.scope != ApiClient.Scope.CHANNEL
