"""System checks for the secrets of the reminder gateway and of bills (the code permutation
key, the channel signing master key): their published development defaults (or none at all)
fail `check --deploy`, and so stop the web and Celery processes from starting with DEBUG off
(bpjsportal/startup.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error

_GATEWAY = "the secret agreed with the SMS/WhatsApp gateway (docs/reminders.md)"
_RANDOM = "a random secret of at least 32 characters, once (docs/operations.md)"
# setting -> (the setting holding its development default, what it protects, what to set)
GATEWAY_SECRETS = {
    "REMINDER_CALLBACK_SECRET": (
        "DEV_REMINDER_CALLBACK_SECRET",
        "anyone could sign a gateway callback (a STOP opts a participant out)",
        _GATEWAY,
    ),
    "REMINDER_GATEWAY_KEY": (
        "DEV_REMINDER_GATEWAY_KEY",
        "it is published in the source, so it must not be the key the real gateway takes",
        _GATEWAY,
    ),
    "BILL_CODE_KEY": (
        "DEV_BILL_CODE_KEY",
        "anyone could count through the bill codes (and pay or read others' bills)",
        _RANDOM,
    ),
    "CHANNEL_SIGNING_KEY": (
        "DEV_CHANNEL_SIGNING_KEY",
        "anyone could derive a channel's signing secret and forge payment notifications",
        _RANDOM,
    ),
}


def register() -> None:
    """Called from ContributionsConfig.ready()."""
    checks.register(check_gateway_secrets_deploy, checks.Tags.security, deploy=True)


def check_gateway_secrets_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, (dev_name, risk, what) in GATEWAY_SECRETS.items():
        value = getattr(settings, name, "")
        if not value or value == getattr(settings, dev_name):
            errors.append(
                Error(
                    f"{name} is {'empty' if not value else 'the development default'}: {risk}.",
                    hint=f"Set {name} to {what}.",
                    id="contributions.E001",
                )
            )
    return errors
