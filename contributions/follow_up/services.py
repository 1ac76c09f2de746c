"""The one write path of the follow-up queue: record what came of a contact."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from enrollment import permissions
from enrollment.models import Participant

from ..errors import ContributionError
from .models import FollowUpOutcome, Outcome

NOTE_MAX = 500


class FollowUpError(ContributionError):
    """An outcome that cannot be recorded; nothing was written. Codes: unknown_outcome,
    promise_needs_date, promise_in_past, date_only_for_promise, note_too_long, not_in_scope."""


@transaction.atomic
def record_outcome(
    *,
    participant: Participant,
    outcome: str,
    recorded_by: Any,  # the staff user (a User; request.user behind login_required)
    promised_date: date | None = None,
    note: str = "",
) -> FollowUpOutcome:
    """Append one outcome of a follow-up contact. A promise needs a date that is today or later
    (the portal's today, Asia/Jakarta); any other outcome takes no date. Raises FollowUpError."""
    if outcome not in Outcome.values:
        raise FollowUpError("unknown_outcome", _("Choose what came of the contact."))
    if not permissions.can(recorded_by, "follow_up", participant):
        raise FollowUpError("not_in_scope", _("This participant is not in your follow-up queue."))
    today = timezone.localdate()
    if outcome == Outcome.PROMISED:
        if promised_date is None:
            raise FollowUpError(
                "promise_needs_date", _("A promise needs the date the participant will pay by.")
            )
        if promised_date < today:
            raise FollowUpError(
                "promise_in_past",
                _("The promised date must be today (%(today)s) or later.")
                % {"today": formats.date_format(today, "j F Y")},
            )
    elif promised_date is not None:
        raise FollowUpError("date_only_for_promise", _("Only a promise to pay takes a date."))
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise FollowUpError(
            "note_too_long",
            _("The note is too long: at most %(max)d characters.") % {"max": NOTE_MAX},
        )
    return FollowUpOutcome.objects.create(
        participant=participant,
        outcome=outcome,
        promised_date=promised_date,
        note=note,
        phone=participant.phone or "",
        recorded_by=recorded_by,
        recorded_at=timezone.now(),
        recorded_on=today,
    )
