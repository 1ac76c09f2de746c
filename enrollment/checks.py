"""System checks for the NIK keys (enrollment/pii.py): malformed keys always fail; the development
defaults fail `check --deploy`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from . import pii


@register(Tags.security)
def check_nik_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, parse in (
        ("NIK_HMAC_KEY", pii.parse_hmac_key),
        ("NIK_ENCRYPTION_KEYS", pii.parse_encryption_keys),
    ):
        try:
            parse(getattr(settings, name))
        except pii.NikKeyError as exc:
            errors.append(Error(f"{name}: {exc}", id="enrollment.E001"))
    if settings.NIK_HMAC_OLD_KEY:
        try:
            pii.parse_hmac_key(settings.NIK_HMAC_OLD_KEY)
        except pii.NikKeyError as exc:
            errors.append(Error(f"NIK_HMAC_OLD_KEY: {exc}", id="enrollment.E001"))
    return errors


@register(Tags.security, deploy=True)
def check_nik_keys_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if settings.NIK_HMAC_KEY == settings.DEV_NIK_HMAC_KEY:
        errors.append(
            Error(
                "NIK_HMAC_KEY is the development default.",
                hint="Set NIK_HMAC_KEY to a random secret of at least 32 characters "
                "(docs/operations.md, 'NIK keys').",
                id="enrollment.E002",
            )
        )
    dev_keys = {key for _, key in pii.parse_encryption_keys(settings.DEV_NIK_ENCRYPTION_KEYS)}
    try:
        configured = pii.parse_encryption_keys(settings.NIK_ENCRYPTION_KEYS)
    except pii.NikKeyError:
        configured = []  # reported by check_nik_keys
    if any(key in dev_keys for _, key in configured):
        errors.append(
            Error(
                "NIK_ENCRYPTION_KEYS contains the development key.",
                hint="Generate a key with `manage.py rotate_nik_keys --new-key` and set "
                "NIK_ENCRYPTION_KEYS (docs/operations.md, 'NIK keys').",
                id="enrollment.E003",
            )
        )
    if settings.NIK_HMAC_OLD_KEY:
        errors.append(
            Warning(
                "NIK_HMAC_OLD_KEY is set: an HMAC key rotation is in progress.",
                hint="Unset it once `manage.py rotate_nik_keys --rehash` has finished.",
                id="enrollment.W001",
            )
        )
    return errors


@register(Tags.security)
def check_kpj_key(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The KPJ permutation key (enrollment/kpj.py): too short always fails; the development
    default fails `check --deploy` (anyone could count through the numbers with it)."""
    key = str(getattr(settings, "KPJ_KEY", "") or "")
    if len(key) < 32:
        return [Error("KPJ_KEY must be at least 32 characters.", id="enrollment.E004")]
    return []


@register(Tags.security, deploy=True)
def check_kpj_key_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.KPJ_KEY == settings.DEV_KPJ_KEY:
        return [
            Error(
                "KPJ_KEY is the development default.",
                hint="Set KPJ_KEY to a random secret of at least 32 characters, once, before "
                "the first registration; never change it afterwards (docs/operations.md).",
                id="enrollment.E005",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_kpj_issuer_deploy(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """KPJ numbers in production come from BPJS's core system (enrollment/core_system.py)."""
    issuer = str(getattr(settings, "KPJ_ISSUER", "local") or "local")
    if issuer == "http" and not str(getattr(settings, "CORE_SYSTEM_URL", "") or ""):
        return [Error("KPJ_ISSUER=http needs CORE_SYSTEM_URL.", id="enrollment.E006")]
    if issuer != "http":
        return [
            Warning(
                "KPJ numbers come from the portal's own generator, not BPJS's core system.",
                hint="Set KPJ_ISSUER=http, CORE_SYSTEM_URL and CORE_SYSTEM_TOKEN "
                "(docs/operations.md, 'KPJ numbers').",
                id="enrollment.W002",
            )
        ]
    return []
