"""Back-office polish (issue 22): every model of the project's apps has a name in Indonesian (the
default language), foreign keys to large tables are picked with an autocomplete box (or a raw id,
or not editable at all) instead of a <select> of every row, and every argument of the project's
management commands has a help text."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.widgets import (
    AutocompleteSelect,
    AutocompleteSelectMultiple,
    ForeignKeyRawIdWidget,
    ManyToManyRawIdWidget,
    RelatedFieldWidgetWrapper,
)
from django.contrib.auth.models import User
from django.core.management import get_commands, load_command_class
from django.db import models
from django.forms import ModelChoiceField
from django.test import Client, RequestFactory
from django.utils import translation

from contributions.models import (
    AutodebitCharge,
    AutodebitMandate,
    Bill,
    Coverage,
    LedgerEntry,
    Payment,
    Reminder,
    SuspenseItem,
)
from enrollment.models import Participant, Region, StaffProfile
from tests.conftest import ROOT, login_as

pytestmark = pytest.mark.django_db

# The tables too large for a <select> of every row (Region: 91,599 Kemendagri regions).
LARGE_TABLES: tuple[type[models.Model], ...] = (
    Participant,
    Payment,
    LedgerEntry,
    User,
    StaffProfile,
    Region,
    Coverage,
    Bill,
    Reminder,
    SuspenseItem,
    AutodebitMandate,
    AutodebitCharge,
)
# Model names that stay the same in Indonesian, with the reason. None so far: every name of the
# project's models has an Indonesian word (a proper noun such as "Perisai" sits inside one).
SAME_IN_INDONESIAN: dict[str, str] = {}


def _project_app_labels() -> set[str]:
    """The apps whose code is this repository's (not Django's or a dependency's)."""
    venv = ROOT / ".venv"
    return {
        config.label
        for config in apps.get_app_configs()
        if Path(config.path).is_relative_to(ROOT) and not Path(config.path).is_relative_to(venv)
    }


def _project_models() -> list[type[models.Model]]:
    labels = _project_app_labels()
    return [m for m in apps.get_models() if m._meta.app_label in labels]


def test_the_project_apps_are_found() -> None:
    assert {"enrollment", "contributions", "reporting", "audit"} <= _project_app_labels()
    names = {m._meta.label for m in _project_models()}
    assert {"contributions.CommissionStatement", "contributions.FollowUpOutcome"} <= names


@pytest.mark.parametrize("model", _project_models(), ids=lambda m: m._meta.label)
def test_every_model_names_itself_in_indonesian(model: type[models.Model]) -> None:
    """A name set in Meta (not Django's guess from the class name), translated: the Indonesian
    name differs from the English one, singular and plural. Registered or not: every model's
    name also shows in the permissions list of a user's page."""
    opts = model._meta
    assert "verbose_name" in opts.original_attrs, f"{opts.label}: no verbose_name in Meta"
    assert "verbose_name_plural" in opts.original_attrs, f"{opts.label}: no plural in Meta"
    with translation.override("en"):
        english = str(opts.verbose_name), str(opts.verbose_name_plural)
    with translation.override("id"):
        indonesian = str(opts.verbose_name), str(opts.verbose_name_plural)
    if opts.label in SAME_IN_INDONESIAN:
        return
    assert indonesian[0] != english[0], f"{opts.label}: {english[0]!r} is not translated"
    assert indonesian[1] != english[1], f"{opts.label}: {english[1]!r} is not translated"


def test_every_registered_project_model_is_checked() -> None:
    registered = {m for m in admin.site._registry if m._meta.app_label in _project_app_labels()}
    assert len(registered) >= 41  # the audit's count: 41 models in the back office
    assert registered <= set(_project_models())


# --- foreign keys to large tables ---------------------------------------------------------------
PICKERS = (
    AutocompleteSelect,
    AutocompleteSelectMultiple,
    ForeignKeyRawIdWidget,
    ManyToManyRawIdWidget,
)


def _large_choice_fields(form_class: Any) -> list[tuple[str, Any]]:
    found = []
    for name, field in form_class.base_fields.items():
        if not isinstance(field, ModelChoiceField):  # (ModelMultipleChoiceField is one too)
            continue
        target = field.queryset.model._meta.concrete_model
        if issubclass(target, LARGE_TABLES):
            widget = field.widget
            if isinstance(widget, RelatedFieldWidgetWrapper):
                widget = widget.widget
            found.append((name, widget))
    return found


def _forms_of(model_admin: Any, request: Any) -> list[tuple[str, Any]]:
    """The forms the admin renders with editable fields: its add form (unless the admin has an
    add page of its own), its change form for an existing row, their inlines' forms. A read-only
    admin renders none (every field is shown as text)."""
    forms: list[tuple[str, Any]] = []
    own_add_view = type(model_admin).add_view is not admin.ModelAdmin.add_view
    if model_admin.has_add_permission(request) and not own_add_view:
        forms.append(("add", model_admin.get_form(request, None, change=False)))
        for inline in model_admin.get_inline_instances(request, None):
            forms.append((f"add inline {inline.model.__name__}", inline.get_formset(request).form))
    obj = model_admin.get_queryset(request).first()
    if model_admin.has_change_permission(request, obj):
        forms.append(("change", model_admin.get_form(request, obj, change=True)))
        for inline in model_admin.get_inline_instances(request, obj):
            form = inline.get_formset(request, obj).form
            forms.append((f"change inline {inline.model.__name__}", form))
    return forms


def test_foreign_keys_to_large_tables_are_never_a_select_of_every_row(
    admin_user: Any, register: Any, agent: Any
) -> None:
    register()  # a participant, an agent, regions: each change form has a row to show
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    checked: set[str] = set()
    wrong = []
    for model, model_admin in admin.site._registry.items():
        for mode, form_class in _forms_of(model_admin, request):
            for name, widget in _large_choice_fields(form_class):
                where = f"{model._meta.label} {mode}: {name}"
                checked.add(where)
                if not isinstance(widget, PICKERS):
                    wrong.append(f"{where} ({type(widget).__name__})")
    assert not wrong, "foreign keys to large tables shown as a select of every row:\n" + "\n".join(
        wrong
    )
    # The check looked at the forms that matter (a check that finds nothing proves nothing).
    assert {
        "enrollment.Participant add: village",
        "enrollment.Participant change: village",
        "enrollment.StaffProfile change: user",
        "enrollment.Branch add: province",
        "enrollment.ApiClient add: agent",
        "contributions.ReminderPreference add: participant",
        "contributions.PerisaiOffice add inline PerisaiMembership: agent",
    } <= checked


def test_autocomplete_fields_use_autocomplete_widgets_not_raw_ids() -> None:
    """The issue: raw ids where autocomplete belongs. A raw id remains only where the target has
    no admin page to search (bills)."""
    raw = {
        f"{m._meta.label}.{f}"
        for m, ma in admin.site._registry.items()
        if m._meta.app_label in _project_app_labels()
        for f in ma.raw_id_fields
    }
    assert raw == {"contributions.SuspenseItem.bill"}
    assert not admin.site.is_registered(Bill)


def test_read_only_admins_stay_read_only(admin_user: Any) -> None:
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    for model in (LedgerEntry, Payment, Coverage, AutodebitCharge):
        model_admin = admin.site.get_model_admin(model)
        assert model_admin.autocomplete_fields  # the filter boxes changed ...
        assert not model_admin.has_add_permission(request)  # ... the permissions did not
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
    audit_admins = [ma for m, ma in admin.site._registry.items() if m._meta.app_label == "audit"]
    assert audit_admins
    for model_admin in audit_admins:
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)


# --- the pages ------------------------------------------------------------------------------------
def test_participant_form_has_autocomplete_boxes_and_the_index_speaks_indonesian(
    admin_user: Any,
) -> None:
    client = login_as(Client(HTTP_ACCEPT_LANGUAGE="id"), admin_user)
    page = client.get("/admin/enrollment/participant/add/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'class="admin-autocomplete' in body
    assert 'data-field-name="village"' in body and 'data-model-name="participant"' in body
    assert 'name="village"' in body and "vForeignKeyRawIdAdminField" not in body
    assert "Tambahkan peserta" in body  # "Add participant"

    index = client.get("/admin/").content.decode()
    for name in ("Peserta", "Pembayaran", "Entri buku besar", "Cakupan", "Pengingat"):
        assert f">{name}<" in index, name
    english = login_as(Client(HTTP_ACCEPT_LANGUAGE="en"), admin_user).get("/admin/")
    assert ">Participants<" in english.content.decode()  # the same page, in English


def _autocomplete(client: Client, app: str, model: str, field: str, term: str) -> Any:
    response = client.get(
        "/admin/autocomplete/",
        {"app_label": app, "model_name": model, "field_name": field, "term": term},
    )
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def test_participant_autocomplete_finds_by_kpj_or_name_and_shows_no_nik(
    admin_user: Any, register: Any
) -> None:
    budi = register()
    client = login_as(Client(), admin_user)
    by_name = _autocomplete(client, "contributions", "payment", "participant", "Budi Sant")
    assert [r["id"] for r in by_name["results"]] == [str(budi.pk)]
    assert by_name["results"][0]["text"] == f"{budi.kpj_number} Budi Santoso"
    by_kpj = _autocomplete(client, "contributions", "payment", "participant", budi.kpj_number)
    assert [r["id"] for r in by_kpj["results"]] == [str(budi.pk)]
    # The whole NIK finds the participant through its digest, as the list's search does; the
    # answer shows the KPJ number and name, never the NIK.
    by_nik = client.get(
        "/admin/autocomplete/",
        {
            "app_label": "contributions",
            "model_name": "payment",
            "field_name": "participant",
            "term": budi.nik,
        },
    ).content.decode()
    assert str(budi.kpj_number) in by_nik
    assert budi.nik not in by_nik
    # Fewer than three characters: nothing (no page through millions of participants).
    assert _autocomplete(client, "contributions", "payment", "participant", "Bu")["results"] == []


def test_region_autocomplete_offers_the_level_the_field_takes(admin_user: Any) -> None:
    client = login_as(Client(), admin_user)
    villages = _autocomplete(client, "enrollment", "participant", "village", "32.73.05.100")
    assert villages["results"] and all(
        Region.objects.get(pk=r["id"]).level == Region.Level.VILLAGE for r in villages["results"]
    )
    provinces = _autocomplete(client, "enrollment", "participant", "province", "")
    assert {r["id"] for r in provinces["results"]} >= {"32", "35"}
    assert all(len(r["id"]) == 2 for r in provinces["results"])
    regencies = _autocomplete(client, "enrollment", "participant", "regency", "Bandung")
    assert {r["id"] for r in regencies["results"]} >= {"32.04", "32.73"}
    assert all(
        Region.objects.get(pk=r["id"]).level == Region.Level.REGENCY for r in regencies["results"]
    )
    # A region's parent: any level.
    parents = _autocomplete(client, "enrollment", "region", "parent", "32.73")
    levels = {Region.objects.get(pk=r["id"]).level for r in parents["results"]}
    assert {Region.Level.REGENCY, Region.Level.DISTRICT} <= levels


def test_autocomplete_is_for_back_office_users_only(supervisor: Any) -> None:
    client = login_as(Client(), supervisor)
    response = client.get(
        "/admin/autocomplete/",
        {
            "app_label": "contributions",
            "model_name": "payment",
            "field_name": "participant",
            "term": "Budi",
        },
    )
    assert response.status_code in (302, 403)


# --- management commands ----------------------------------------------------------------------
def _project_commands() -> list[tuple[str, str]]:
    project = {c.name for c in apps.get_app_configs() if c.label in _project_app_labels()}
    return sorted((app, name) for name, app in get_commands().items() if app in project)


def test_the_project_commands_are_found() -> None:
    names = {name for _app, name in _project_commands()}
    assert {"seed_demo", "import_payments", "rebuild_rollups", "export_participant_data"} <= names


@pytest.mark.parametrize(("app", "name"), _project_commands(), ids=lambda v: v)
def test_every_command_argument_has_help(app: str, name: str) -> None:
    parser = load_command_class(app, name).create_parser("manage.py", name)
    missing = [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert not missing, f"manage.py {name}: arguments without help: {missing}"
