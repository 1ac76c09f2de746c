"""The outcome of one follow-up contact. Append-only like the ledger: the database refuses
UPDATE and DELETE (migration 0024_followup); a change of mind is a later outcome, and the latest
outcome of a participant is the one the queue reads (contributions/follow_up/selectors.py).

Keyed for distribution by participant (docs/architecture.md): `participant_id` leads the unique
constraint, as in every table keyed by a participant. The row itself is the audit trail (who,
when, what, the number tried), so it is not tracked again by bpjsportal.audit.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from enrollment.sharding import ParticipantRow


class Outcome(models.TextChoices):
    PAID = "paid", _("Paid")
    PROMISED = "promised", _("Promised to pay by a date")
    CANNOT_PAY = "cannot_pay", _("Cannot pay now")
    MOVED = "moved", _("Moved away")
    DIED = "died", _("Died")
    WRONG_NUMBER = "wrong_number", _("Wrong number")


# Outcomes that take a participant out of the queue until a later outcome says otherwise.
LEAVES_QUEUE = (Outcome.MOVED, Outcome.DIED)


class FollowUpOutcome(ParticipantRow):
    participant = models.ForeignKey(
        "enrollment.Participant", on_delete=models.PROTECT, related_name="follow_up_outcomes"
    )
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    # The day the participant promised to pay by (outcome "promised" only; today or later).
    promised_date = models.DateField(_("promised date"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    # The number the agent tried: "wrong number" flags the phone while it is still this one.
    phone = models.CharField(max_length=16, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField()
    # The portal's "today" when recorded (Asia/Jakarta): the month the analytics count it in.
    recorded_on = models.DateField()

    class Meta:
        verbose_name = _("follow-up outcome")
        verbose_name_plural = _("follow-up outcomes")
        ordering = ["-id"]
        indexes = [models.Index(fields=["recorded_on"], name="followup_recorded_on")]
        constraints = [
            models.UniqueConstraint(fields=["participant", "id"], name="followup_participant_id"),
            models.CheckConstraint(
                condition=(Q(outcome="promised") & Q(promised_date__isnull=False))
                | (~Q(outcome="promised") & Q(promised_date__isnull=True)),
                name="followup_promise_has_date",
            ),
            models.CheckConstraint(
                condition=Q(promised_date__isnull=True)
                | Q(promised_date__gte=models.F("recorded_on")),
                name="followup_promise_not_past",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.participant_id}: {self.outcome}"
