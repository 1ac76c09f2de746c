"""Reporting tables: targets (as data, versioned) and the daily rollups the dashboards read."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Target(models.Model):
    """The national target of a year: active BPU participants at the year's end.

    `starting_point` is the active count the straight path starts from on 1 January; blank means
    "the actual active count on 31 December of the year before" (from the rollups)."""

    year = models.PositiveSmallIntegerField(_("year"), unique=True)
    active_target = models.BigIntegerField(_("active participants at year end"))
    starting_point = models.BigIntegerField(
        _("active participants on 1 January"), null=True, blank=True
    )
    note = models.CharField(_("note"), max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name = _("membership target")
        verbose_name_plural = _("membership targets")
        ordering = ["-year"]
        constraints = [
            models.CheckConstraint(condition=Q(active_target__gt=0), name="target_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.year}: {self.active_target:,}"


class TargetMilestone(models.Model):
    """An explicit month-end milestone; months without one follow the straight path."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="milestones")
    month = models.PositiveSmallIntegerField(_("month"))
    active = models.BigIntegerField(_("active participants at month end"))

    class Meta:
        verbose_name = _("target milestone")
        verbose_name_plural = _("target milestones")
        ordering = ["target", "month"]
        constraints = [
            models.UniqueConstraint(fields=["target", "month"], name="milestone_unique_month"),
            models.CheckConstraint(
                condition=Q(month__gte=1, month__lte=12), name="milestone_month"
            ),
            models.CheckConstraint(condition=Q(active__gte=0), name="milestone_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.target.year}-{self.month:02d}: {self.active:,}"


class TargetBreakdown(models.Model):
    """A quota of the year's target for one province, occupation or partner."""

    class Dimension(models.TextChoices):
        PROVINCE = "province", _("Province")
        OCCUPATION = "occupation", _("Occupation")
        PARTNER = "partner", _("Partner")

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="breakdowns")
    dimension = models.CharField(_("dimension"), max_length=12, choices=Dimension.choices)
    key = models.CharField(
        _("code"), max_length=32, help_text=_("province code, occupation code or partner code")
    )
    active_target = models.BigIntegerField(_("active participants at year end"))

    class Meta:
        verbose_name = _("target breakdown")
        verbose_name_plural = _("target breakdowns")
        ordering = ["target", "dimension", "key"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "dimension", "key"], name="breakdown_unique_key"
            ),
            models.CheckConstraint(
                condition=Q(active_target__gte=0), name="breakdown_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.target.year} {self.dimension} {self.key}: {self.active_target:,}"


class TargetVersion(models.Model):
    """Append-only history of a target: who saved what, when (the full state as JSON)."""

    year = models.PositiveSmallIntegerField(db_index=True)
    version = models.PositiveIntegerField()
    state = models.JSONField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16)  # seed, admin, form

    class Meta:
        verbose_name = _("target version")
        verbose_name_plural = _("target versions")
        ordering = ["-year", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["year", "version"], name="target_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.year} v{self.version}"


class RollupFigures(models.Model):
    """The figures of a rollup row. Stocks (registered, active, grace, lapsed) are as of the end
    of `day`; flows (new registrations, reactivations, lapses, collections) happened on `day`;
    `ytd_*` are the flows from 1 January to `day`, so a dashboard reads one day, never a year of
    days."""

    day = models.DateField()
    province_id = models.CharField(max_length=13)
    occupation_id = models.CharField(max_length=32)
    channel = models.CharField(max_length=16)
    partner_id = models.BigIntegerField(null=True)
    registered = models.IntegerField(default=0)
    active = models.IntegerField(default=0)
    grace = models.IntegerField(default=0)
    lapsed = models.IntegerField(default=0)
    new_registrations = models.IntegerField(default=0)
    reactivations = models.IntegerField(default=0)
    lapses = models.IntegerField(default=0)
    payments = models.IntegerField(default=0)
    collected_jkk = models.BigIntegerField(default=0)
    collected_jkm = models.BigIntegerField(default=0)
    collected_jht = models.BigIntegerField(default=0)
    collected_other = models.BigIntegerField(default=0)  # adjustments: no programme split
    collected_total = models.BigIntegerField(default=0)
    ytd_new_registrations = models.IntegerField(default=0)
    ytd_reactivations = models.IntegerField(default=0)
    ytd_lapses = models.IntegerField(default=0)
    ytd_payments = models.IntegerField(default=0)
    ytd_collected_jkk = models.BigIntegerField(default=0)
    ytd_collected_jkm = models.BigIntegerField(default=0)
    ytd_collected_jht = models.BigIntegerField(default=0)
    ytd_collected_other = models.BigIntegerField(default=0)
    ytd_collected_total = models.BigIntegerField(default=0)

    class Meta:
        abstract = True


class DailyRollup(RollupFigures):
    """Counts and sums of one day per (province, regency, occupation, channel, partner).
    Built set-based by reporting.rollups (the package); read by the regency table of
    a province (everything else reads the smaller ProvinceRollup derived from it)."""

    regency_id = models.CharField(max_length=13)

    class Meta:
        verbose_name = _("daily rollup")
        verbose_name_plural = _("daily rollups")
        indexes = [
            models.Index(fields=["day", "province_id"], name="rollup_day_province"),
            models.Index(fields=["province_id", "day"], name="rollup_province_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.province_id} {self.occupation_id}"


class ProvinceRollup(RollupFigures):
    """DailyRollup without the regency: the same figures per (day, province, occupation,
    channel, partner), derived from DailyRollup in the transaction that writes a day
    (`rollups.definitions.derive_province_rollup`). A day has one row per group that exists in
    the country, not per regency (at 10 M participants ~1/13 of DailyRollup's rows), so the
    national and province figures, the series and every table but the regency one read this."""

    class Meta:
        verbose_name = _("province rollup")
        verbose_name_plural = _("province rollups")
        indexes = [
            models.Index(fields=["day", "province_id"], name="province_rollup_day_province"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.province_id} {self.occupation_id} {self.channel}"


class DemographicRollup(models.Model):
    """Stocks of one day per (province, occupation, partner, sex, age band at that day): the sex
    and age-band tables, kept apart so the main rollup stays ten times smaller."""

    day = models.DateField()
    province_id = models.CharField(max_length=13)
    occupation_id = models.CharField(max_length=32)
    partner_id = models.BigIntegerField(null=True)
    sex = models.CharField(max_length=1)
    age_band = models.CharField(max_length=8)
    registered = models.IntegerField(default=0)
    active = models.IntegerField(default=0)
    grace = models.IntegerField(default=0)
    lapsed = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("demographic rollup")
        verbose_name_plural = _("demographic rollups")
        indexes = [models.Index(fields=["day", "province_id"], name="demo_rollup_day_province")]

    def __str__(self) -> str:
        return f"{self.day} {self.province_id} {self.sex} {self.age_band}"


class AgentRollup(models.Model):
    """Per agent (staff profile) and day: registrations by `registered_by`, collections by
    `collected_by`. Feeds the league tables."""

    day = models.DateField()
    agent_id = models.BigIntegerField()
    branch_id = models.BigIntegerField(null=True)
    province_id = models.CharField(max_length=13, blank=True)
    registered = models.IntegerField(default=0)
    active = models.IntegerField(default=0)
    new_registrations = models.IntegerField(default=0)
    collected_total = models.BigIntegerField(default=0)
    ytd_new_registrations = models.IntegerField(default=0)
    ytd_collected_total = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("agent rollup")
        verbose_name_plural = _("agent rollups")
        indexes = [models.Index(fields=["day", "branch_id"], name="agent_rollup_day_branch")]

    def __str__(self) -> str:
        return f"{self.day} agent {self.agent_id}"


class RollupDay(models.Model):
    """Which days have been built, and when: the dashboards use the latest built day."""

    day = models.DateField(primary_key=True)
    built_at = models.DateTimeField()
    seconds = models.FloatField(default=0)
    # The ledger entry and participant ids the build read up to: the intraday refresh applies
    # what came after (null = built by the per-day build: refresh rebuilds the day).
    ledger_mark = models.BigIntegerField(null=True)
    participant_mark = models.BigIntegerField(null=True)

    class Meta:
        verbose_name = _("rollup day")
        verbose_name_plural = _("rollup days")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day}"


class FiguresVersion(models.Model):
    """One row whose number goes up in the same transaction as every write the dashboard's
    figures depend on (rollup builds and refreshes, targets, partners, occupations, regions):
    part of the figures cache's key (reporting/cache.py). Being a row, it travels with the data
    to a read replica: a reader sees the new number exactly when it sees the new data."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    number = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("figures version")
        verbose_name_plural = _("figures versions")

    def __str__(self) -> str:
        return f"figures version {self.number}"


class CohortRollup(models.Model):
    """Cohort retention (reporting.rollups.cohorts): of the participants whose membership
    started in `cohort` (Coverage.start_month, the registration month), how many were active at
    the end of their membership month `month` (1 = the registration month, up to 24), of
    `participants` in the cohort. One row per cut: `province_id` ('' = the whole country) and
    one optional `dimension` ('' none, 'occupation', 'channel', 'payer', 'agent') with its
    `key`, so every filter the page offers (a province, one other dimension, or both) is one
    index range of at most 24 x 24 rows."""

    province_id = models.CharField(max_length=13, blank=True)
    dimension = models.CharField(max_length=12, blank=True)
    key = models.CharField(max_length=32, blank=True)
    cohort = models.DateField()
    month = models.PositiveSmallIntegerField()
    participants = models.IntegerField(default=0)
    active = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("cohort rollup")
        verbose_name_plural = _("cohort rollups")
        indexes = [
            models.Index(
                fields=["province_id", "dimension", "key", "cohort"], name="cohort_rollup_cut"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cohort} m{self.month} {self.province_id}/{self.dimension}={self.key}"


class RetentionFlowRollup(models.Model):
    """Lapse and reactivation flows per calendar month, by the same cuts as CohortRollup:
    `lapses` = participants lapsed at the end of `month` who were not lapsed at the end of the
    month before (or registered in `month`); `reactivations` = lapsed at the end of the month
    before and not at the end of `month`."""

    province_id = models.CharField(max_length=13, blank=True)
    dimension = models.CharField(max_length=12, blank=True)
    key = models.CharField(max_length=32, blank=True)
    month = models.DateField()
    lapses = models.IntegerField(default=0)
    reactivations = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("retention flow rollup")
        verbose_name_plural = _("retention flow rollups")
        indexes = [
            models.Index(
                fields=["province_id", "dimension", "key", "month"], name="retention_flow_cut"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month} {self.province_id}/{self.dimension}={self.key}"


class CohortBuild(models.Model):
    """The state of the cohort rollups (one row): the last complete month they run to, and the
    ledger and participant id marks the build read up to (a later build with nothing new before
    the month's end skips the work)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_month = models.DateField()
    built_at = models.DateTimeField()
    seconds = models.FloatField(default=0)
    ledger_mark = models.BigIntegerField(default=0)
    participant_mark = models.BigIntegerField(default=0)
    changed_mark = models.DateTimeField(null=True)

    class Meta:
        verbose_name = _("cohort build")
        verbose_name_plural = _("cohort builds")

    def __str__(self) -> str:
        return f"cohorts to {self.last_month}"
