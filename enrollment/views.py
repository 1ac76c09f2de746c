"""Browser pages for field agents, supervisors and admins. Thin: parse, call a service, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from bpjsportal.core import qr
from bpjsportal.core.api.errors import FieldError

from . import core_system, hooks, nik_check, permissions, selectors
from .errors import RegistrationError
from .forms import RegistrationForm
from .models import Participant, Region, StaffProfile
from .services import register_participant

PAGE_SIZE = 25


def _profile_or_404(request: HttpRequest, action: str) -> StaffProfile:
    profile = selectors.staff_profile(request.user)
    if profile is None or not permissions.can(request.user, action):
        raise Http404(_("You have no staff profile; ask an administrator."))
    return profile


def _visible(request: HttpRequest) -> QuerySet[Participant]:
    return selectors.participants_visible_to(request.user).select_related(
        "occupation", "village", "province"
    )


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    profile = selectors.staff_profile(request.user)
    term = request.GET.get("q", "")
    qs = selectors.search_participants(_visible(request), term)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    counts = selectors.registration_counts(profile) if profile else None
    agents = (
        selectors.branch_agents(profile)
        if profile and profile.role == StaffProfile.Role.SUPERVISOR
        else None
    )
    return render(
        request,
        "enrollment/home.html",
        {"page": page, "q": term, "counts": counts, "profile": profile, "agents": agents},
    )


def _channel_for(profile: StaffProfile) -> str:
    return (
        Participant.Channel.AGENT
        if profile.role == StaffProfile.Role.AGENT
        else Participant.Channel.BRANCH
    )


@login_required
def register(request: HttpRequest) -> HttpResponse:
    profile = _profile_or_404(request, "register_participant")
    if request.method == "POST":
        form = RegistrationForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                participant = register_participant(
                    nik=data["nik"],
                    full_name=data["full_name"],
                    birth_date=data["birth_date"],
                    sex=data["sex"],
                    phone=data["phone"],
                    email=data["email"],
                    village=data["village"],
                    address=data["address"],
                    occupation=data["occupation"],
                    declared_income=data["declared_income"],
                    jht=data["jht"],
                    partner=data["partner"],
                    language=data["language"],
                    consent_data=data["consent_data"],
                    consent_reminders=data["consent_reminders"],
                    channel=_channel_for(profile),
                    # Always the logged-in user: a posted "registered_by" is never read.
                    registered_by=profile,
                    client_token=data["client_token"],
                )
            except RegistrationError as exc:
                _attach_errors(form, nik_check.as_seen_by(request.user, exc))
            else:
                return redirect("enrollment:registered", pk=participant.pk)
    else:
        form = RegistrationForm()
    status = 200 if not form.errors else 400
    return render(request, "enrollment/register.html", {"form": form}, status=status)


def _attach_errors(form: RegistrationForm, errors: list[FieldError]) -> None:
    for error in errors:
        field = error.field if error.field in form.fields else None
        form.add_error(field, str(error.message))


@login_required
@require_POST
def check_nik(request: HttpRequest) -> HttpResponse:
    """Inline validation while typing (htmx): the NIK's own rules and whether a participant in
    the user's scope has it; rate-limited per user (enrollment/nik_check.py)."""
    result = nik_check.check_nik(request.user, request.POST.get("nik", ""))
    response = render(
        request,
        "enrollment/_nik_check.html",
        {"message": result.message, "ok": result.ok, "participant": result.participant},
        status=429 if result.limited else 200,
    )
    if result.limited:
        response["Retry-After"] = str(result.retry_after)
    return response


@login_required
@require_GET
def region_options(request: HttpRequest) -> HttpResponse:
    """<option>s of one level under a parent, for the cascading selects."""
    try:
        level = int(request.GET.get("level", ""))
    except ValueError:
        level = 0
    if level not in (2, 3, 4):
        return HttpResponse(_("Unknown level"), status=400)
    parent_field = {2: "province", 3: "regency", 4: "district"}[level]
    parent = request.GET.get(parent_field, "")[:13]
    regions = selectors.region_children(parent, level) if parent else Region.objects.none()
    return render(
        request,
        "enrollment/_region_options.html",
        {"regions": regions, "level": level},
    )


@login_required
@require_GET
def registered(request: HttpRequest, pk: int) -> HttpResponse:
    participant = get_object_or_404(_visible(request), pk=pk)
    return render(
        request,
        "enrollment/registered.html",
        {
            "participant": participant,
            # only those the user may see: the page names no one outside the scope
            "duplicates": selectors.likely_duplicates(participant).filter(
                pk__in=permissions.participants_in_scope(request.user).values("pk")
            )[:5],
            **hooks.participant_panels(participant),
        },
    )


@login_required
@require_GET
def participant_detail(request: HttpRequest, pk: int) -> HttpResponse:
    participant = get_object_or_404(_visible(request).select_related("regency"), pk=pk)
    return render(
        request,
        "enrollment/participant_detail.html",
        {
            "participant": participant,
            "today": timezone.localdate(),
            **hooks.participant_panels(participant),
        },
    )


@login_required
@require_GET
def participant_card(request: HttpRequest, pk: int) -> HttpResponse:
    participant = get_object_or_404(_visible(request), pk=pk)
    return render(
        request,
        "enrollment/card.html",
        {
            "participant": participant,
            "qr_svg": qr.svg(participant.kpj_number),
            "kpj_from_core": core_system.numbers_are_bpjs(),
        },
    )
