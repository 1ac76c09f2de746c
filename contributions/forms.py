"""Browser forms of contributions: parse only; the services hold the rules."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from enrollment.models import Participant, Partner, PayerType

from .models import RECEIVING_CHANNELS, Payment
from .rates import MAX_MONTHS


class CashPaymentForm(forms.Form):
    """Cash collected by an agent. `client_token` becomes the payment reference, so a
    double-submitted form posts one payment."""

    months = forms.TypedChoiceField(
        label=_("Months paid"),
        coerce=int,
        choices=[(n, str(n)) for n in range(1, MAX_MONTHS + 1)],
        initial=1,
    )
    amount = forms.IntegerField(label=_("Cash received (Rp)"), min_value=1)
    # Whose money the agent was handed: the worker's own (the usual case) or, say, a village
    # paying from its Dana Desa - a budget payer pays the undiscounted rate (PP 50/2025).
    payer_type = forms.ChoiceField(
        label=_("Whose money"), choices=PayerType.choices, initial=PayerType.SELF, required=False
    )
    client_token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, participant: Participant | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("client_token", uuid.uuid4())
        super().__init__(*args, **kwargs)
        self.participant = participant


class ReversalForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=255)


class ImportUploadForm(forms.Form):
    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=[(v, label) for v, label in Payment.Channel.choices if v in RECEIVING_CHANNELS],
    )
    file = forms.FileField(label=_("Reconciliation file (CSV, UTF-8)"))


class SponsorBatchForm(forms.Form):
    sponsor = forms.ModelChoiceField(label=_("Sponsor"), queryset=Partner.objects.none())
    reference = forms.CharField(label=_("Batch reference"), max_length=64)
    rows = forms.CharField(
        label=_("Rows: KPJ or NIK, months (one per line)"),
        widget=forms.Textarea(attrs={"rows": 10}),
    )
    total_amount = forms.IntegerField(label=_("Total paid (Rp), optional"), required=False)
    payer_type = forms.ChoiceField(
        label=_("Whose money"),
        choices=[("", _("The sponsor's payer type")), *PayerType.choices],
        required=False,
        help_text=_("Budget-paid batches (APBD, APBN, village fund) pay the undiscounted rate."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["sponsor"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Partner.objects.filter(active=True)

    def clean_rows(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for n, line in enumerate(self.cleaned_data["rows"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.replace(";", ",").split(",")]
            if len(parts) != 2 or not parts[1].isdigit():
                raise forms.ValidationError(
                    _("Line %(n)s: write KPJ or NIK, months (e.g. 12345678901,3)."),
                    params={"n": n},
                )
            out.append((parts[0], int(parts[1])))
        if not out:
            raise forms.ValidationError(_("Enter at least one row."))
        return out


class SponsorConsentForm(forms.Form):
    """Field staff record that the participant agreed, in person, to be paid for by a sponsor
    (an administrator's entry is an approval); the note says how it was confirmed."""

    sponsor = forms.ModelChoiceField(label=_("Sponsor"), queryset=Partner.objects.none())
    note = forms.CharField(
        label=_("How the participant agreed (where, which document was seen)"), max_length=255
    )
    confirmed = forms.BooleanField(
        label=_("I confirm the participant agreed to this sponsor paying their contributions"),
        required=True,
    )

    def __init__(self, *args: Any, participant: Participant | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["sponsor"]
        assert isinstance(field, forms.ModelChoiceField)
        sponsors = Partner.objects.filter(
            active=True, kind__in=[Partner.Kind.SPONSOR, Partner.Kind.BUNDLE]
        )
        if participant is not None and participant.partner_id is not None:
            sponsors = sponsors.exclude(pk=participant.partner_id)  # it needs no consent
        field.queryset = sponsors
