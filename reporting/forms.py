"""The target form (admins): the national figure, the starting point, month-end milestones and
quotas, one `dimension,code,value` line each."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Target, TargetBreakdown

MONTH_FIELDS = [f"m{m:02d}" for m in range(1, 13)]


class TargetForm(forms.Form):
    active_target = forms.IntegerField(label=_("Active participants at year end"), min_value=1)
    starting_point = forms.IntegerField(
        label=_("Active participants on 1 January"),
        min_value=0,
        required=False,
        help_text=_("Blank: the actual figure on 31 December of the year before."),
    )
    note = forms.CharField(label=_("Note"), max_length=255, required=False)
    breakdowns = forms.CharField(
        label=_("Quotas"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "One per line: province,32,1200000 or occupation,petani,500000 or "
            "partner,COMBOFIT,100000"
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for m, name in enumerate(MONTH_FIELDS, start=1):
            self.fields[name] = forms.IntegerField(
                label=_("Milestone, end of month %(month)s") % {"month": m},
                min_value=0,
                required=False,
            )

    @staticmethod
    def initial_for(target: Target | None) -> dict[str, Any]:
        if target is None:
            return {}
        initial: dict[str, Any] = {
            "active_target": target.active_target,
            "starting_point": target.starting_point,
            "note": target.note,
            "breakdowns": "\n".join(
                f"{b.dimension},{b.key},{b.active_target}" for b in target.breakdowns.all()
            ),
        }
        for m in target.milestones.all():
            initial[MONTH_FIELDS[m.month - 1]] = m.active
        return initial

    def clean_breakdowns(self) -> list[tuple[str, str, int]]:
        out: list[tuple[str, str, int]] = []
        seen = set()
        for n, line in enumerate((self.cleaned_data.get("breakdowns") or "").splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(",")]
            if (
                len(parts) != 3
                or parts[0] not in TargetBreakdown.Dimension.values
                or not parts[2].isdigit()
            ):
                raise forms.ValidationError(
                    _("Line %(n)s: write dimension,code,value (e.g. province,32,1200000).")
                    % {"n": n}
                )
            if (parts[0], parts[1]) in seen:
                raise forms.ValidationError(_("Line %(n)s is a duplicate.") % {"n": n})
            seen.add((parts[0], parts[1]))
            out.append((parts[0], parts[1], int(parts[2])))
        return out

    def milestones(self) -> dict[int, int]:
        return {
            m: self.cleaned_data[name]
            for m, name in enumerate(MONTH_FIELDS, start=1)
            if self.cleaned_data.get(name) is not None
        }
