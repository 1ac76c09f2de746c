"""The agent's side of autodebit, on the participant's page (#autodebit): send the participant
a one-time code, type the code the participant reads out with the bank or e-wallet and the
account, and the mandate is on; or turn it off. Without the participant's code an agent cannot
set up a mandate (contributions/autodebit.py has the rules)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from enrollment import permissions
from enrollment.selectors import staff_profile

from . import autodebit, self_service
from .models import AutodebitMandate
from .tasks import send_participant_code
from .views import participant_in_scope, participant_url

ACTION = "record_payment"  # who may take payments for the participant may set up autodebit


def _session_key(pk: int) -> str:
    return f"autodebit_code_{pk}"


@login_required
@require_POST
def autodebit_panel(request: HttpRequest, pk: int) -> HttpResponse:
    participant = participant_in_scope(request, pk, ACTION)
    back = redirect(f"{participant_url(participant)}#autodebit")
    action = request.POST.get("action", "")
    profile = staff_profile(request.user)
    national = permissions.scope_of(request.user, ACTION) == permissions.Scope.NATIONAL
    by = AutodebitMandate.By.ADMIN if national else AutodebitMandate.By.AGENT
    if action == "off":
        mandate = autodebit.active_mandate(participant)
        if mandate is not None and autodebit.cancel(
            mandate, by=by, reason=request.POST.get("reason", "")
        ):
            messages.success(request, _("Autodebit is off."))
        return back
    if action == "send_code":
        issued = self_service.issue_code(participant)
        if issued is None:
            messages.error(
                request,
                _("No code can be sent now (no phone number, or too many codes lately)."),
            )
            return back
        transaction.on_commit(
            lambda: send_participant_code.delay(issued.code_id, issued.code, "autodebit")
        )
        request.session[_session_key(pk)] = issued.code_id
        messages.success(request, _("A code was sent to the participant's phone."))
        return back
    code_id = request.session.get(_session_key(pk))
    found = (
        self_service.check_code(code_id, request.POST.get("code", ""))
        if isinstance(code_id, int)
        else None
    )
    if found is None or found.pk != participant.pk:
        messages.error(request, _("The participant's code is wrong or has expired."))
        return back
    request.session.pop(_session_key(pk), None)
    try:
        autodebit.set_up(
            participant=participant,
            client=autodebit.channel_by_id(request.POST.get("channel", "")),
            account=request.POST.get("account", ""),
            by=by,
            # the agent who follows the participant up is told of failed charges; an
            # administrator setting it up leaves that to the registering agent
            agent=None if national else profile,
        )
    except autodebit.AutodebitError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Autodebit is on."))
    return back
