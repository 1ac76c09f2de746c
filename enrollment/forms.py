"""Browser forms. They parse input; the rules live in services.register_participant."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from . import hooks
from .models import Occupation, Participant, Partner, Region
from .nik import NikError, parse_nik
from .services import PHONE_MESSAGE, normalize_phone


def rupiah(amount: int) -> str:
    return "Rp " + f"{amount:,}".replace(",", ".")


def _levels_choices() -> list[tuple[str, str]]:
    return [(str(a), rupiah(a)) for a in hooks.income_levels(timezone.localdate())]


class RegistrationForm(forms.Form):
    nik = forms.CharField(
        label=_("NIK"),
        max_length=32,
        strip=True,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    full_name = forms.CharField(label=_("Full name (as on the KTP)"), max_length=200)
    birth_date = forms.DateField(
        label=_("Birth date"), widget=forms.DateInput(attrs={"type": "date"})
    )
    sex = forms.ChoiceField(
        label=_("Sex"), choices=Participant.Sex.choices, widget=forms.RadioSelect
    )
    phone = forms.CharField(
        label=_("Mobile phone"), max_length=20, widget=forms.TextInput(attrs={"inputmode": "tel"})
    )
    email = forms.CharField(label=_("Email (optional)"), max_length=254, required=False)
    province = forms.ChoiceField(label=_("Province"))
    regency = forms.ChoiceField(label=_("Regency/city"))
    district = forms.ChoiceField(label=_("District"))
    village = forms.ChoiceField(label=_("Village"))
    address = forms.CharField(label=_("Address (street, RT/RW)"), max_length=255)
    occupation = forms.ModelChoiceField(
        label=_("Occupation"), queryset=Occupation.objects.all(), empty_label="—"
    )
    declared_income = forms.TypedChoiceField(label=_("Declared monthly income"), coerce=int)
    jht = forms.BooleanField(label=_("Add JHT (old-age savings, optional)"), required=False)
    partner = forms.ModelChoiceField(
        label=_("Partner / sponsor (optional)"),
        required=False,
        queryset=Partner.objects.filter(active=True),
    )
    language = forms.ChoiceField(
        label=_("Message language"), choices=[("id", "Bahasa Indonesia"), ("en", "English")]
    )
    consent_data = forms.BooleanField(
        label=_("The worker agrees to the processing of their personal data"), required=False
    )
    consent_reminders = forms.BooleanField(
        label=_("The worker agrees to receive payment reminders"), required=False, initial=True
    )
    client_token = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("client_token", uuid.uuid4())
        data = self.data if self.is_bound else {}
        blank = [("", "—")]
        self._choices("province", blank + _region_choices(None, 1))
        for name, parent, level in (
            ("regency", "province", 2),
            ("district", "regency", 3),
            ("village", "district", 4),
        ):
            code = data.get(parent) or ""
            self._choices(
                name, blank + (_region_choices(code, level) if code and len(code) <= 13 else [])
            )
        self._choices("declared_income", blank + _levels_choices())
        occupation = self.fields["occupation"]
        assert isinstance(occupation, forms.ModelChoiceField)
        language = self._language()
        occupation.label_from_instance = lambda o: o.localized_name(language)  # type: ignore[method-assign,assignment]

    def clean_nik(self) -> str:
        """The NIK's own rules show even while other fields are still missing; the service
        checks them again together with the database rules."""
        value: str = self.cleaned_data["nik"]
        try:
            parse_nik(value, today=timezone.localdate())
        except NikError as exc:
            raise forms.ValidationError(str(exc.message), code=exc.code) from exc
        return value

    def clean_phone(self) -> str:
        value: str = self.cleaned_data["phone"]
        try:
            normalize_phone(value)
        except ValueError as exc:
            raise forms.ValidationError(str(PHONE_MESSAGE), code="phone_invalid") from exc
        return value

    def _choices(self, name: str, choices: list[tuple[str, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def _language(self) -> str:
        return get_language() or "id"


def _region_choices(parent: str | None, level: int) -> list[tuple[str, str]]:
    qs = Region.objects.filter(level=level).order_by("name").values_list("code", "name")
    if parent:
        qs = qs.filter(parent_id=parent)
    return list(qs)
