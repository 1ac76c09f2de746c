"""Back-office admin. Participants are created through the registration service (one rule set)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .api.clients import check_api_client, create_api_client, revoke_api_client
from .errors import RegistrationError
from .models import (
    ApiClient,
    Branch,
    NikPrefix,
    Occupation,
    Participant,
    Partner,
    Region,
    SecurityAlert,
    StaffProfile,
)
from .permissions import can
from .selectors import search_by_nik
from .services import note_occupation_change, register_participant


class RoleAdmin(admin.ModelAdmin[Any]):
    """Back-office pages ask the roles table (enrollment/permissions.py): seeing the page needs
    `use_back_office`, adding, changing and deleting need `permission_action`. Django's own
    model permissions still apply on top (superusers have them all)."""

    permission_action = "use_back_office"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can(request.user, "use_back_office") and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can(request.user, "use_back_office") and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can(request.user, self.permission_action) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = can(request.user, self.permission_action)
        return allowed and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = can(request.user, self.permission_action)
        return allowed and super().has_delete_permission(request, obj)


def autocomplete_source(request: HttpRequest) -> tuple[str, str, str] | None:
    """For the admin's autocomplete endpoint (the search box of a foreign key in another admin's
    form): the app, model and field that ask; None for any other request (e.g. a list's search).
    """
    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name != "autocomplete":
        return None
    get = request.GET
    return get.get("app_label", ""), get.get("model_name", ""), get.get("field_name", "")


class LargeTableAdmin(RoleAdmin):
    """The admin of a large table (participants, payments, ledger entries, regions) that other
    admins' forms pick from with an autocomplete box: the box lists nothing until a few
    characters are typed (an empty search would count and page through the whole table on every
    keystroke)."""

    autocomplete_min_term = 3

    def get_autocomplete_min_term(self, source: tuple[str, str, str]) -> int:
        return self.autocomplete_min_term

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        source = autocomplete_source(request)
        if source and len(search_term.strip()) < self.get_autocomplete_min_term(source):
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)


# A region field of these names (Participant.village/regency/province) takes regions of one level.
REGION_FIELD_LEVEL = {
    "province": Region.Level.PROVINCE,
    "regency": Region.Level.REGENCY,
    "village": Region.Level.VILLAGE,
}


@admin.register(Region)
class RegionAdmin(LargeTableAdmin, admin.ModelAdmin[Region]):
    """91,599 regions: other forms pick one by code or name; a participant's village, regency and
    province boxes offer only regions of that level."""

    list_display = ("code", "name", "level", "kind", "timezone")
    list_filter = ("level", "timezone")
    search_fields = ("code", "name")
    autocomplete_fields = ("parent",)
    autocomplete_min_term = 2  # a province's two-digit code

    def get_autocomplete_min_term(self, source: tuple[str, str, str]) -> int:
        # 38 provinces: listed before anything is typed
        return 0 if source[2] == "province" else self.autocomplete_min_term

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Region], search_term: str
    ) -> tuple[QuerySet[Region], bool]:
        source = autocomplete_source(request)
        if source is not None and source[2] in REGION_FIELD_LEVEL:
            queryset = queryset.filter(level=REGION_FIELD_LEVEL[source[2]])
        return super().get_search_results(request, queryset, search_term)


@admin.register(NikPrefix)
class NikPrefixAdmin(RoleAdmin, admin.ModelAdmin[NikPrefix]):
    list_display = ("code", "name", "historical")
    search_fields = ("code", "name")
    list_filter = ("historical",)


@admin.register(Occupation)
class OccupationAdmin(RoleAdmin, admin.ModelAdmin[Occupation]):
    list_display = ("code", "name_id", "name_en", "sector", "ktp_code", "sort_order")
    list_filter = ("sector",)


@admin.register(Branch)
class BranchAdmin(RoleAdmin, admin.ModelAdmin[Branch]):
    list_display = ("code", "name", "province")
    search_fields = ("code", "name")
    autocomplete_fields = ("province",)


@admin.register(StaffProfile)
class StaffProfileAdmin(RoleAdmin, admin.ModelAdmin[StaffProfile]):
    permission_action = "manage_users"
    list_display = ("user", "role", "branch", "province", "agent_code")
    list_filter = ("role", "branch")
    autocomplete_fields = ("user", "province")
    search_fields = ("user__username", "agent_code")


@admin.register(Partner)
class PartnerAdmin(RoleAdmin, admin.ModelAdmin[Partner]):
    list_display = ("code", "name", "kind", "payer_type", "active")
    list_filter = ("kind", "payer_type", "active")
    search_fields = ("code", "name")


class ProvinceFilter(admin.SimpleListFilter):
    title = _("province")
    parameter_name = "province"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Region.objects.filter(level=1).values_list("code", "name"))

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(province_id=self.value()) if self.value() else queryset


class ParticipantAddForm(forms.ModelForm[Participant]):
    nik = forms.CharField(label="NIK", max_length=32)

    class Meta:
        model = Participant
        fields = [
            "full_name",
            "birth_date",
            "sex",
            "phone",
            "email",
            "village",
            "address",
            "occupation",
            "declared_income",
            "jht",
            "channel",
            "partner",
            "consent_data",
            "consent_reminders",
            "language",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            self.instance = register_participant(
                nik=data["nik"],
                full_name=data["full_name"],
                birth_date=data["birth_date"],
                sex=data["sex"],
                phone=data["phone"],
                email=data.get("email", ""),
                village=data["village"],
                address=data["address"],
                occupation=data["occupation"],
                declared_income=data["declared_income"],
                jht=data.get("jht", False),
                channel=data["channel"],
                partner=data.get("partner"),
                consent_data=data.get("consent_data", False),
                consent_reminders=data.get("consent_reminders", False),
                language=data.get("language", "id"),
                registered_by=getattr(self, "staff_profile", None),
            )
        except RegistrationError as exc:
            for error in exc.errors:
                field = error.field if error.field in self.fields else None
                self.add_error(field, str(error.message))
        return data

    def _post_clean(self) -> None:  # the service built and saved the instance
        if self.instance.pk is None:
            super()._post_clean()


@admin.register(Participant)
class ParticipantAdmin(LargeTableAdmin, admin.ModelAdmin[Participant]):
    permission_action = "edit_participant"
    list_display = ("kpj_number", "full_name", "masked_nik", "province", "occupation", "created_at")
    list_filter = (ProvinceFilter, "occupation", "channel")
    # By KPJ number or name, and by the whole NIK through its digest (get_search_results):
    # nothing is decrypted to search, and an autocomplete box shows the KPJ number and name only.
    search_fields = ("=kpj_number", "full_name")
    autocomplete_fields = ("village", "province", "regency", "registered_by", "partner", "branch")
    list_select_related = ("province", "occupation")
    show_full_result_count = False  # no COUNT(*) over millions on every page
    # The data-subject export action is added by bpjsportal/audit/admin.py: the audit app sits
    # above enrollment (it reads every app's data), so enrollment does not import it.
    readonly_fields = (
        "masked_nik",
        "kpj_number",
        "birth_date",
        "sex",
        "province",
        "regency",
        "branch",
        "registered_by",
        "client_token",
        "created_at",
        "updated_at",
    )

    @admin.display(description="NIK")
    def masked_nik(self, obj: Participant) -> str:
        return obj.masked_nik

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Participant], search_term: str
    ) -> tuple[QuerySet[Participant], bool]:
        by_nik = search_by_nik(queryset, search_term)
        if by_nik is not None:
            return by_nik, False
        return super().get_search_results(request, queryset, search_term)

    def get_form(
        self,
        request: HttpRequest,
        obj: Participant | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> Any:
        if obj is None:
            kwargs["form"] = ParticipantAddForm
            form = super().get_form(request, obj, change=change, **kwargs)
            form.staff_profile = getattr(request.user, "staff", None)  # type: ignore[attr-defined]
            return form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Participant | None = None) -> Any:
        return () if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Participant, form: Any, change: bool) -> None:
        if change:
            previous = form.initial.get("occupation", obj.occupation_id)
            super().save_model(request, obj, form, change)
            note_occupation_change(obj, str(previous), timezone.localdate())
        # on add, register_participant already saved it inside the form's clean()

    def has_delete_permission(self, request: HttpRequest, obj: Participant | None = None) -> bool:
        return False  # participants are never deleted: the ledger refers to them


class ApiClientForm(forms.ModelForm[ApiClient]):
    autodebit_url = forms.URLField(
        required=False,
        max_length=200,
        assume_scheme="https",
        label=_("Autodebit charge API (channels)"),
        help_text=_("The base URL where the portal charges this channel's autodebit mandates."),
    )

    class Meta:
        model = ApiClient
        fields = [
            "name",
            "scope",
            "partner",
            "agent",
            "payment_channel",
            "autodebit_url",
            "daily_lookup_limit",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = data.get("scope") or self.instance.scope
        if data.get("autodebit_url") and scope != ApiClient.Scope.CHANNEL:
            self.add_error("autodebit_url", _("Only a payment channel takes autodebit mandates."))
        if self.instance.pk is None and not self.errors:
            for error in check_api_client(
                name=data.get("name", ""),
                scope=data.get("scope", ""),
                partner=data.get("partner"),
                agent=data.get("agent"),
                payment_channel=data.get("payment_channel", ""),
            ):
                field = error.field if error.field in self.fields else None
                self.add_error(field, str(error.message))
        return data


@admin.register(ApiClient)
class ApiClientAdmin(RoleAdmin, admin.ModelAdmin[ApiClient]):
    """API clients: the token is shown once, on creation; only its hash is stored."""

    permission_action = "manage_api_clients"
    form = ApiClientForm
    list_display = (
        "name",
        "scope",
        "partner",
        "agent",
        "token_prefix",
        "active",
        "revoke_reason",
        "last_used_at",
    )
    list_filter = ("scope", "active", "revoke_reason")
    search_fields = ("name", "token_prefix")
    autocomplete_fields = ("agent", "partner")
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiClient | None = None) -> Any:
        if obj is None:
            return ()
        return (
            "scope",
            "partner",
            "agent",
            "payment_channel",
            "token_prefix",
            "active",
            "revoked_at",
            "revoke_reason",
        )

    def get_fields(self, request: HttpRequest, obj: ApiClient | None = None) -> Any:
        base = [
            *("name", "scope", "partner", "agent", "payment_channel"),
            *("autodebit_url", "daily_lookup_limit"),
        ]
        if obj is None:
            return base
        return [*base, "token_prefix", "active", "revoked_at", "revoke_reason"]

    def save_model(self, request: HttpRequest, obj: ApiClient, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = create_api_client(
            name=obj.name,
            scope=obj.scope,
            partner=obj.partner,
            agent=obj.agent,
            payment_channel=obj.payment_channel,
        )
        if obj.autodebit_url:
            ApiClient.objects.filter(pk=issued.client.pk).update(autodebit_url=obj.autodebit_url)
        obj.pk = issued.client.pk
        obj.token_prefix = issued.client.token_prefix
        messages.warning(
            request,
            _("Token for %(name)s (shown once, store it now): %(token)s")
            % {"name": obj.name, "token": issued.token},
        )

    @admin.action(description=_("Revoke the selected clients' tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        for client in queryset:
            revoke_api_client(client)
        messages.success(request, _("%(n)s client(s) revoked.") % {"n": queryset.count()})


@admin.register(SecurityAlert)
class SecurityAlertAdmin(RoleAdmin, admin.ModelAdmin[SecurityAlert]):
    """Alerts for the administrators (e.g. a channel at its daily look-up limit): read, then
    acknowledged; never edited or deleted."""

    permission_action = "manage_api_clients"
    list_display = ("created_at", "kind", "client", "day", "acknowledged_at", "acknowledged_by")
    list_filter = ("kind", ("acknowledged_at", admin.EmptyFieldListFilter))
    readonly_fields = (
        "kind",
        "client",
        "day",
        "message",
        "created_at",
        "acknowledged_at",
        "acknowledged_by",
    )
    actions = ["acknowledge"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Acknowledge the selected alerts"))
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[SecurityAlert]) -> None:
        user = request.user if isinstance(request.user, User) else None
        n = queryset.filter(acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), acknowledged_by=user
        )
        messages.success(request, _("%(n)s alert(s) acknowledged.") % {"n": n})


# Users and their groups are roles data: the same table decides who may change them.
class PortalUserAdmin(RoleAdmin, UserAdmin):
    permission_action = "manage_users"


class PortalGroupAdmin(RoleAdmin, GroupAdmin):
    permission_action = "manage_users"


for _model, _admin in ((User, PortalUserAdmin), (Group, PortalGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
