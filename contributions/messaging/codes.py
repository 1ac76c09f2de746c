"""Sending a participant's one-time login code (contributions/self_service.py) through the
SMS/WhatsApp gateway, in the participant's language. Not subject to the reminders' quiet
hours: the participant is waiting for it."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ..models import ParticipantCode
from .gateways import OutgoingMessage, channel


def send_code(code_id: int, code: str, purpose: str = "login") -> str:
    """Send the code `code_id` (whose plain value is `code`) to its participant's phone by SMS;
    "sent", or "expired" when it is no longer valid (nothing sent). The gateway de-duplicates
    on the reference, so a retried task sends one message."""
    row = ParticipantCode.objects.select_related("participant").filter(pk=code_id).first()
    if row is None or row.used_at is not None or row.expires_at <= timezone.now():
        return "expired"
    participant = row.participant
    language = "en" if (participant.language or "").startswith("en") else "id"
    with translation.override(language):
        if purpose == "autodebit":  # an agent sets up autodebit with the participant
            text = _(
                "BPJS Ketenagakerjaan: code %(code)s turns on autodebit of your BPU "
                "contribution. Give it to the agent only if you agreed to autodebit. It works "
                "for %(minutes)s minutes."
            ) % {"code": code, "minutes": settings.SELF_SERVICE_CODE_MINUTES}
        else:
            text = _(
                "BPJS Ketenagakerjaan: your login code is %(code)s. It works for %(minutes)s "
                "minutes. Never give it to anyone, not even to staff."
            ) % {"code": code, "minutes": settings.SELF_SERVICE_CODE_MINUTES}
    channel("sms").send(
        OutgoingMessage(
            channel="sms", to=participant.phone, text=text, reference=f"bpu-code-{code_id}"
        )
    )
    return "sent"
