"""Enrollment API views: thin — parse, check scope, call the service or selector, render."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from bpjsportal.core.api.base import ApiCursorPagination
from bpjsportal.core.api.errors import ApiError
from bpjsportal.core.api.sync import decode_token, encode_token, sync_page

from ..errors import RegistrationError
from ..models import ApiClient, Occupation, Participant, Region, nik_q
from ..selectors import search_participants
from ..services import register_participant, update_participant
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
from .scopes import (
    decorate_participants,
    may_register,
    may_sync_participants,
    participants_for,
    sees_full_nik,
)
from .serializers import (
    LEVELS_BY_NAME,
    BulkInput,
    BulkOutput,
    ErrorSerializer,
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
ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 404: ErrorSerializer, 429: ErrorSerializer}


class RegionPagination(ApiCursorPagination):
    ordering = "code"
    page_size = 500


class RegionListApi(ApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter("level", str, enum=list(LEVELS_BY_NAME)),
            OpenApiParameter("parent", str),
            OpenApiParameter("cursor", str),
            OpenApiParameter("page_size", PAGE_SIZE),
        ],
        responses={200: PaginatedRegions, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        level = request.query_params.get("level")
        qs = Region.objects.all()
        if level:
            if level not in LEVELS_BY_NAME:
                raise ApiError(
                    "level_invalid", _("level must be province, regency, district or village.")
                )
            qs = qs.filter(level=LEVELS_BY_NAME[level])
        parent = request.query_params.get("parent")
        if parent:
            qs = qs.filter(parent_id=parent[:13])
        paginator = RegionPagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(RegionSerializer(page, many=True).data)


class OccupationListApi(ApiView):
    @extend_schema(responses={200: OccupationSerializer(many=True), **ERRORS})
    def get(self, request: Request) -> Response:
        return Response(OccupationSerializer(Occupation.objects.all(), many=True).data)


def _participants(qs: QuerySet[Participant]) -> QuerySet[Participant]:
    return decorate_participants(qs.select_related("partner"))


def _filtered(request: Request, client: ApiClient) -> QuerySet[Participant]:
    params = request.query_params
    if client.scope == ApiClient.Scope.CHANNEL:
        # A cashier needs a masked name and the amount due, nothing more: GET /api/v1/dues/.
        raise ApiError(
            "permission_denied",
            _("A payment channel reads no participant records; look up what is due at /dues/."),
            status_code=status.HTTP_403_FORBIDDEN,
        )
    qs = participants_for(client)
    for param, field in (
        ("province", "province_id"),
        ("regency", "regency_id"),
        ("occupation", "occupation_id"),
        ("partner", "partner__code"),
        ("agent", "registered_by__agent_code"),
    ):
        value = params.get(param)
        if value:
            qs = qs.filter(**{field: value[:32]})
    if params.get("kpj"):
        qs = qs.filter(kpj_number=params["kpj"][:11])
    if params.get("nik"):
        qs = qs.filter(nik_q(params["nik"][:16]))
    if params.get("search"):
        qs = search_participants(qs, params["search"])
    return qs


def _status_filter(request: Request, qs: QuerySet[Participant]) -> QuerySet[Participant]:
    value = request.query_params.get("status")
    if not value:
        return qs
    if value not in ("active", "grace", "lapsed"):
        raise ApiError("status_invalid", _("status must be active, grace or lapsed."))
    return qs.filter(**{"coverage_status": value})  # annotated by contributions


LIST_PARAMS = [
    OpenApiParameter(name, str)
    for name in (
        "province",
        "regency",
        "occupation",
        "partner",
        "agent",
        "kpj",
        "nik",
        "search",
        "cursor",
    )
] + [
    OpenApiParameter("status", str, enum=["active", "grace", "lapsed"]),
    OpenApiParameter("page_size", PAGE_SIZE),
]


class ParticipantListApi(ApiView):
    @extend_schema(
        parameters=LIST_PARAMS,
        responses={200: PaginatedParticipants, **ERRORS},
        operation_id="participants_list",
    )
    def get(self, request: Request) -> Response:
        client = self.client(request)
        qs = _status_filter(request, _participants(_filtered(request, client)))
        paginator = ApiCursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        data = ParticipantSerializer(
            page, many=True, context={"mask_nik": not sees_full_nik(client)}
        ).data
        return paginator.get_paginated_response(data)

    @extend_schema(
        request=ParticipantInput,
        responses={201: ParticipantSerializer, 409: ErrorSerializer, **ERRORS},
        operation_id="participants_create",
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

    @extend_schema(responses={200: ParticipantSerializer, **ERRORS})
    def get(self, request: Request, pk: int) -> Response:
        return Response(ParticipantSerializer(self._get(request, pk)).data)

    @extend_schema(request=ParticipantPatchInput, responses={200: ParticipantSerializer, **ERRORS})
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
        request=BulkInput,
        parameters=[
            OpenApiParameter("Idempotency-Key", IDEMPOTENCY_KEY, OpenApiParameter.HEADER, True)
        ],
        responses={200: BulkOutput, 422: ErrorSerializer, **ERRORS},
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
    OpenApiParameter("since", str, description="the next_token of the previous page"),
    OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": 1000}),
]


def sync_page_size(request: Request) -> int:
    raw = request.query_params.get("page_size", "500")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1000):
        raise ApiError("page_size_invalid", _("page_size must be between 1 and 1000."))
    return int(raw)


class ParticipantSyncApi(ApiView):
    @extend_schema(parameters=SYNC_PARAMS, responses={200: SyncParticipantsOutput, **ERRORS})
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
