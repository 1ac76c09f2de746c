"""The participant page's contributions panel: the facts the selectors read, the forms of the
panel and the reminders part (contributions.messaging). Page assembly, apart from the selectors so
that they stay pure reads; enrollment shows it through the `participant_panels` hook.
"""

from __future__ import annotations

from django.utils import timezone

from enrollment.models import Participant

from . import autodebit, selectors
from . import coverage as rules
from .forms import CashPaymentForm, SponsorConsentForm
from .messaging.reminders import reminder_panel
from .models import CoverageStatus, SponsorConsent
from .rates import monthly_contribution_panel


def participant_panel(participant: Participant) -> dict[str, object]:
    """The participant page's contribution panel (extends the monthly-contribution facts)."""
    today = timezone.localdate()
    cov = selectors.coverage_of(participant)
    status = (
        rules.status_for(paid_through=cov.paid_through, start_month=cov.start_month, as_of=today)
        if cov
        else None
    )
    return {
        **monthly_contribution_panel(participant),
        "panel_templates": [
            "contributions/_participant_panel.html",
            "contributions/_reminders_panel.html",
            "contributions/_sponsors_panel.html",
            "contributions/_autodebit_panel.html",
        ],
        **autodebit.facts(participant, today),
        "sponsor_consents": list(
            SponsorConsent.objects.filter(participant=participant)
            .select_related("sponsor", "granted_by")
            .order_by("withdrawn_at", "-granted_at")
        ),
        "sponsor_form": SponsorConsentForm(participant=participant),
        **reminder_panel(participant),
        "coverage": cov,
        "coverage_status": status,
        "coverage_status_label": CoverageStatus(status).label if status else "",
        "due_now": selectors.amount_due_now(participant, cov, today),
        "ledger_recent": list(selectors.ledger_of(participant)[: selectors.RECENT_ENTRIES]),
        "cash_form": CashPaymentForm(participant=participant),
    }
