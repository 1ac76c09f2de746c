"""Enrollment API views: thin — parse, check scope, call the service or selector, render."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from bpjsportal.core.api.base import ApiCursorPagination
from bpjsportal.core.api.errors import ApiError
from bpjsportal.core.api.sync import decode_token, encode_token, sync_page

from ..errors import RegistrationError
from ..models import ApiClient, Occupation, Participant, Region
from ..services import register_participant, update_participant
from . import schema as doc
from .base import ApiView, registration_error
from .bulk import (
    BULK_MAX_ROWS,
    Replay,
    bulk_upsert,
    check_idempotency_key,
    claim_key,
    registration_kwargs,
    request_hash,
)
from .filters import ParticipantFilter, RegionFilter, filter_for
from .scopes import (
    decorate_participants,
    may_register,
    may_sync_participants,
    participants_for,
    sees_full_nik,
)
from .serializers import (
    BulkInput,
    BulkOutput,
    OccupationSerializer,
    PaginatedParticipants,
    PaginatedRegions,
    ParticipantInput,
    ParticipantPatchInput,
    ParticipantSerializer,
    RegionSerializer,
    SyncParticipantsOutput,
    participant_row,
    participant_values,
)

PAGE_SIZE = {"type": "integer", "minimum": 1, "maximum": 500}
# check_idempotency_key: 1 to 128 printable ASCII characters (no space at either end: HTTP trims)
IDEMPOTENCY_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "pattern": r"^[!-~]([ -~]*[!-~])?$",
}


def page_params(default: int = 100) -> list[OpenApiParameter]:
    """The cursor pagination's parameters (bpjsportal/core/api/base.py)."""
    return [
        OpenApiParameter("cursor", str, description="the `next` or `previous` link's cursor"),
        OpenApiParameter("page_size", PAGE_SIZE, description=f"rows a page (default {default})"),
    ]


PAGE_PARAMS = page_params()
PARTICIPANT = {
    "id": 42,
    "nik": doc.NIK,
    "kpj_number": doc.KPJ,
    "full_name": "Budi Santoso",
    "birth_date": "1990-05-17",
    "sex": "M",
    "phone": "+6281234567890",
    "email": "",
    "village": "32.73.05.1001",
    "address": "Jl. Melati No. 5, RT 02/RW 03",
    "occupation": "petani",
    "declared_income": 1000000,
    "programmes": ["JKK", "JKM", "JHT"],
    "channel": "agent",
    "partner": None,
    "consent_data": True,
    "consent_reminders": True,
    "status": "active",
    "paid_through": "2026-12-01",
    "registered_at": "2026-03-02T02:15:00Z",
    "updated_at": "2026-12-03T02:41:00Z",
}
REGISTRATION = {
    "nik": doc.NIK,
    "full_name": "Budi Santoso",
    "birth_date": "1990-05-17",
    "sex": "M",
    "phone": "081234567890",
    "village": "32.73.05.1001",
    "address": "Jl. Melati No. 5, RT 02/RW 03",
    "occupation": "petani",
    "declared_income": 1000000,
    "programmes": ["JKK", "JKM", "JHT"],
    "consent_data": True,
    "consent_reminders": True,
}
DUPLICATE_MESSAGE = (
    "This NIK is already registered (KPJ 10000000018). Contact branch Bandung to update or "
    "reactivate the participant."
)
DUPLICATE_NIK = doc.error(
    "The NIK is registered already (`duplicate_nik`); the KPJ number and branch are named only "
    "when the participant is within the client's scope.",
    doc.error_example(
        "duplicate_nik",
        DUPLICATE_MESSAGE,
        errors=[{"field": "nik", "code": "duplicate_nik", "message": DUPLICATE_MESSAGE}],
    ),
)


class RegionPagination(ApiCursorPagination):
    ordering = "code"
    page_size = 500


class RegionListApi(ApiView):
    # the filters (enrollment/api/filters.py); the schema reads them from here
    filter_backends = [DjangoFilterBackend]
    filterset_class = RegionFilter
    queryset = Region.objects.none()  # the FilterSet's model, for the schema only

    @extend_schema(
        operation_id="regions_list",
        tags=[doc.REFERENCE],
        summary="List regions",
        description="The Kemendagri regions (province, regency, district, village) by code, "
        "500 a page; filter by `level` and `parent` (a province's regencies: "
        "`?level=regency&parent=32`). An unknown level is 400 `level_invalid`.",
        filters=True,
        parameters=page_params(RegionPagination.page_size),
        responses={
            200: doc.ok(
                PaginatedRegions,
                "A page of regions in code order.",
                doc.response_example(
                    "regencies",
                    {
                        "next": None,
                        "previous": None,
                        "results": [
                            {
                                "code": "32.73",
                                "name": "Kota Bandung",
                                "level": "regency",
                                "kind": "kota",
                                "parent": "32",
                                "postal_code": "",
                                "timezone": "",
                            }
                        ],
                    },
                ),
            ),
            400: doc.error(
                "A parameter is refused: `level_invalid`, `page_size_invalid`, `invalid_cursor`.",
                doc.error_example(
                    "level_invalid", "level must be province, regency, district or village."
                ),
            ),
        },
    )
    def get(self, request: Request) -> Response:
        qs = filter_for(request, self, Region.objects.all())
        paginator = RegionPagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(RegionSerializer(page, many=True).data)


class OccupationListApi(ApiView):
    @extend_schema(
        operation_id="occupations_list",
        tags=[doc.REFERENCE],
        summary="List occupations",
        description="Every occupation a participant may declare, with its sector (the sector "
        "sets rate discounts) and its code on the KTP. Not paginated.",
        responses={
            200: doc.ok(
                OccupationSerializer(many=True),
                "Every occupation.",
                # one item: drf-spectacular shows it in a list
                doc.response_example(
                    "occupations",
                    {
                        "code": "petani",
                        "name_id": "Petani/Pekebun",
                        "name_en": "Farmer/planter",
                        "sector": "other",
                        "ktp_code": 9,
                    },
                ),
            )
        },
    )
    def get(self, request: Request) -> Response:
        return Response(OccupationSerializer(Occupation.objects.all(), many=True).data)


def _participants(qs: QuerySet[Participant]) -> QuerySet[Participant]:
    return decorate_participants(qs.select_related("partner"))


def _listable(client: ApiClient) -> QuerySet[Participant]:
    if client.scope == ApiClient.Scope.CHANNEL:
        # A cashier needs a masked name and the amount due, nothing more: GET /api/v1/dues/.
        raise ApiError(
            "permission_denied",
            _("A payment channel reads no participant records; look up what is due at /dues/."),
            status_code=status.HTTP_403_FORBIDDEN,
        )
    return participants_for(client)


class ParticipantListApi(ApiView):
    # the filters (enrollment/api/filters.py); the schema reads them from here
    filter_backends = [DjangoFilterBackend]
    filterset_class = ParticipantFilter
    queryset = Participant.objects.none()  # the FilterSet's model, for the schema only

    @extend_schema(
        operation_id="participants_list",
        tags=[doc.PARTICIPANTS],
        summary="List participants",
        description="The participants within the client's scope, newest first, cursor-paginated "
        "(`next` / `previous` are URLs). The NIK is masked unless the client's scope sees full "
        "NIKs. A payment channel reads no participant records (403: use `GET /dues/`).",
        filters=True,
        parameters=PAGE_PARAMS,
        responses={
            200: doc.ok(
                PaginatedParticipants,
                "A page of participants.",
                doc.response_example(
                    "page",
                    {
                        "next": "https://bpu.example/api/v1/participants/?cursor=cD0yMDI2",
                        "previous": None,
                        "results": [{**PARTICIPANT, "nik": doc.MASKED_NIK}],
                    },
                ),
            ),
            400: doc.error(
                "A parameter is refused: `status_invalid`, `page_size_invalid`, `invalid_cursor`.",
                doc.error_example("status_invalid", "status must be active, grace or lapsed."),
            ),
        },
    )
    def get(self, request: Request) -> Response:
        client = self.client(request)
        qs = filter_for(request, self, _participants(_listable(client)))
        paginator = ApiCursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        data = ParticipantSerializer(
            page, many=True, context={"mask_nik": not sees_full_nik(client)}
        ).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        operation_id="participants_create",
        tags=[doc.PARTICIPANTS],
        summary="Register a participant",
        description="Registers a worker (the rules: NIK, age, village, occupation, income level, "
        "consent). Unknown fields and wrong JSON types are refused. An admin client may also "
        "send `channel` and `partner`.",
        request=ParticipantInput,
        examples=[doc.request_example("registration", REGISTRATION, "A farmer in Kota Bandung")],
        responses={
            201: doc.ok(
                ParticipantSerializer,
                "Registered; the participant as the client sees it.",
                doc.response_example(
                    "registered", {**PARTICIPANT, "status": "grace", "paid_through": None}
                ),
            ),
            400: doc.error(
                "Fields are refused: `validation_error`, per field in `errors`.",
                doc.VALIDATION_ERROR,
            ),
            409: DUPLICATE_NIK,
            503: doc.error(
                "The core system or the database is unavailable (`core_unavailable`, "
                "`service_unavailable`); nothing was registered.",
                doc.error_example(
                    "core_unavailable", "The core system is unavailable; try again later."
                ),
            ),
        },
    )
    def post(self, request: Request) -> Response:
        client = _registering_client(self.client(request))
        serializer = ParticipantInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            kwargs = registration_kwargs(client, dict(serializer.validated_data))
            participant = register_participant(**kwargs)
        except RegistrationError as exc:
            raise registration_error(exc, client) from exc
        out = _participants(Participant.objects.filter(pk=participant.pk)).get()
        return Response(ParticipantSerializer(out).data, status=status.HTTP_201_CREATED)


def _registering_client(client: ApiClient) -> ApiClient:
    """The client, if its scope may register participants (single and bulk alike)."""
    if not may_register(client):
        raise ApiError(
            "permission_denied",
            _("This API client may not register participants."),
            status_code=status.HTTP_403_FORBIDDEN,
        )
    return client


class ParticipantDetailApi(ApiView):
    def _get(self, request: Request, pk: int) -> Participant:
        return get_object_or_404(_participants(participants_for(self.client(request))), pk=pk)

    @extend_schema(
        operation_id="participants_retrieve",
        tags=[doc.PARTICIPANTS],
        summary="Read a participant",
        description="One participant within the client's scope, with the full NIK when the "
        "client's scope sees full NIKs (each disclosure is logged).",
        responses={
            200: doc.ok(
                ParticipantSerializer,
                "The participant.",
                doc.response_example("participant", PARTICIPANT),
            ),
            404: doc.PARTICIPANT_NOT_FOUND,
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(ParticipantSerializer(self._get(request, pk)).data)

    @extend_schema(
        operation_id="participants_partial_update",
        tags=[doc.PARTICIPANTS],
        summary="Change a participant",
        description="Changes what may change: phone, email, village, address, occupation, "
        "income level, programmes, reminder consent, language. NIK, birth date, sex, name and "
        "KPJ number cannot (`field_not_changeable`); consent to data processing cannot be "
        "withdrawn here (`consent_required`).",
        request=ParticipantPatchInput,
        examples=[
            doc.request_example(
                "new phone and income",
                {"phone": "+62 812 9999 0000", "declared_income": 1200000},
            )
        ],
        responses={
            200: doc.ok(
                ParticipantSerializer,
                "Changed; the participant after the change.",
                doc.response_example(
                    "changed",
                    {**PARTICIPANT, "phone": "+6281299990000", "declared_income": 1200000},
                ),
            ),
            400: doc.error(
                "Fields are refused: `validation_error`, per field in `errors`.",
                doc.VALIDATION_ERROR,
            ),
            404: doc.PARTICIPANT_NOT_FOUND,
        },
    )
    def patch(self, request: Request, pk: int) -> Response:
        client = self.client(request)
        serializer = ParticipantPatchInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes: dict[str, Any] = dict(serializer.validated_data)
        if "programmes" in changes:
            changes["jht"] = "JHT" in changes.pop("programmes")
        if changes.pop("consent_data", True) is not True:
            raise ApiError(
                "consent_required",
                _("Consent to data processing cannot be withdrawn through the API."),
            )
        with transaction.atomic():
            participant = get_object_or_404(
                participants_for(client, "edit_participant").select_for_update(of=("self",)),
                pk=pk,
            )
            try:
                update_participant(participant=participant, **changes)
            except RegistrationError as exc:
                raise registration_error(exc, client) from exc
        return Response(ParticipantSerializer(self._get(request, pk)).data)


class ParticipantBulkApi(ApiView):
    @extend_schema(
        operation_id="participants_bulk_create",
        tags=[doc.PARTICIPANTS],
        summary="Register or update participants in bulk",
        description="Up to 1,000 rows, each a registration: a new NIK is registered, one "
        "within the client's scope is updated (`on_existing: update`) or refused "
        "(`on_existing: refuse`); each row answers for itself. The `Idempotency-Key` makes a "
        "retry safe: the same key and body replays the first answer (`Idempotent-Replayed: "
        "true`), the same key with another body is 422.",
        request=BulkInput,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                IDEMPOTENCY_KEY,
                OpenApiParameter.HEADER,
                True,
                description="1 to 128 printable ASCII characters, one per request body",
            )
        ],
        examples=[
            doc.request_example(
                "two rows",
                {
                    "rows": [REGISTRATION, {**REGISTRATION, "nik": "3273051705900002"}],
                    "on_existing": "update",
                },
            )
        ],
        responses={
            200: doc.ok(
                BulkOutput,
                "One result per row, and the counts.",
                doc.response_example(
                    "results",
                    {
                        "results": [
                            {
                                "row": 0,
                                "nik": doc.MASKED_NIK,
                                "result": "created",
                                "id": 42,
                                "kpj_number": doc.KPJ,
                                "errors": [],
                            },
                            {
                                "row": 1,
                                "nik": "3273**********02",
                                "result": "error",
                                "id": None,
                                "kpj_number": None,
                                "errors": [
                                    {
                                        "field": "declared_income",
                                        "code": "income_not_level",
                                        "message": doc.INCOME_NOT_LEVEL,
                                    }
                                ],
                            },
                        ],
                        "summary": {"created": 1, "updated": 0, "unchanged": 0, "error": 1},
                    },
                ),
            ),
            400: doc.error(
                "The body or the key is refused: `validation_error`, `too_many_rows`, "
                "`idempotency_key_required`.",
                doc.error_example("too_many_rows", "At most 1000 rows per request.", max_rows=1000),
            ),
            422: doc.error(
                "The Idempotency-Key was used with another body (`idempotency_key_reused`).",
                doc.error_example(
                    "idempotency_key_reused",
                    "This Idempotency-Key was used for a different request.",
                ),
            ),
        },
    )
    def post(self, request: Request) -> Response:
        client = _registering_client(self.client(request))
        key = check_idempotency_key(request.headers.get("Idempotency-Key"))
        rows = request.data.get("rows") if isinstance(request.data, dict) else None
        if isinstance(rows, list) and len(rows) > BULK_MAX_ROWS:
            raise ApiError(
                "too_many_rows",
                _("At most %(max)s rows per request.") % {"max": BULK_MAX_ROWS},
                max_rows=BULK_MAX_ROWS,
            )
        serializer = BulkInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        digest = request_hash(request.data)
        with transaction.atomic():
            claimed = claim_key(client, key, "participants-bulk", digest)
            if isinstance(claimed, Replay):
                response = Response(claimed.body, status=claimed.status_code)
                response["Idempotent-Replayed"] = "true"
                return response
            data = serializer.validated_data
            body = bulk_upsert(client, data["rows"], create_only=data["on_existing"] == "refuse")
            claimed.status_code, claimed.response = 200, body
            claimed.save(update_fields=["status_code", "response"])
        return Response(body, status=status.HTTP_200_OK)


SYNC_PARAMS = [
    OpenApiParameter(
        "since", str, description="the next_token of the previous page (none: from the start)"
    ),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": 1000},
        description="rows a page (default 500)",
    ),
]
SYNC_BAD_TOKEN = doc.error(
    "A parameter is refused: `invalid_token` (start again without `since`), `page_size_invalid`.",
    doc.error_example("invalid_token", "The sync token is not valid; start again without one."),
)


def sync_page_size(request: Request) -> int:
    raw = request.query_params.get("page_size", "500")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1000):
        raise ApiError("page_size_invalid", _("page_size must be between 1 and 1000."))
    return int(raw)


class ParticipantSyncApi(ApiView):
    @extend_schema(
        operation_id="sync_participants_list",
        tags=[doc.SYNC],
        summary="Participants changed since a token",
        description="Every participant within the client's scope created or changed since "
        "`since`, in pages; none skipped or repeated while others write. Keep `next_token` and "
        'ask again while `has_more` (docs/api.md "Incremental sync").',
        parameters=SYNC_PARAMS,
        responses={
            200: doc.ok(
                SyncParticipantsOutput,
                "A page of changes.",
                doc.response_example(
                    "page",
                    {
                        "results": [PARTICIPANT],
                        "next_token": "WzEyMzQsNDJd:1tQk2x:8Rj3v0",
                        "has_more": False,
                    },
                ),
            ),
            400: SYNC_BAD_TOKEN,
        },
    )
    def get(self, request: Request) -> Response:
        client = self.client(request)
        if not may_sync_participants(client):
            raise ApiError(
                "permission_denied",
                _("A payment channel cannot sync participants."),
                status_code=status.HTTP_403_FORBIDDEN,
            )
        since = decode_token("participants", request.query_params.get("since"))
        size = sync_page_size(request)
        # serializer-free: `.values()` rows turned into the ParticipantSerializer representation
        page = sync_page(participant_values(_participants(participants_for(client))), since, size)
        mask = not sees_full_nik(client)
        tz = timezone.get_current_timezone()
        data = [participant_row(v, mask=mask, tz=tz) for v in page.rows]
        return Response(
            {
                "results": data,
                "next_token": encode_token("participants", page.next_position),
                "has_more": page.has_more,
            }
        )


class NotFoundApi(ApiView):
    """Any other path under /api/v1/: a JSON 404, like every other API error."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    @extend_schema(exclude=True)
    def get(self, request: Request, rest: str = "") -> Response:
        raise ApiError("not_found", _("Not found."), status_code=status.HTTP_404_NOT_FOUND)

    post = patch = put = delete = get
