"""Production settings pass `check --deploy`; Postgres is the only database."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def test_postgres_is_the_only_database() -> None:
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


# Keys of the production environment for check --deploy (not the development defaults).
PRODUCTION_NIK_KEYS = {
    "NIK_HMAC_KEY": "Qm9ndXMtcHJvZC1obWFjLWtleS1mb3ItdGVzdHMtb25seQ",
    "NIK_ENCRYPTION_KEYS": "p1:" + "UHJvZHVjdGlvbi1saWtlLWtleS0zMi1ieXRlcyEhIT0=",
    "KPJ_KEY": "a-production-kpj-permutation-key-for-tests",
}
# The SMS/WhatsApp gateway's secrets (not the development defaults: contributions.E001).
PRODUCTION_GATEWAY_SECRETS = {
    "REMINDER_CALLBACK_SECRET": "a-production-callback-secret-for-tests-0123",
    "REMINDER_GATEWAY_KEY": "a-production-gateway-key-for-tests",
    # bills: the code permutation key and the channel signing master key (also contributions.E001)
    "BILL_CODE_KEY": "a-production-bill-code-permutation-key-for-tests",
    "CHANNEL_SIGNING_KEY": "a-production-channel-signing-master-key-for-tests",
    # KPJ numbers from the core system, not the local generator (enrollment.W002)
    "KPJ_ISSUER": "http",
    "CORE_SYSTEM_URL": "https://core.bpjs.example.id/api",
    "CORE_SYSTEM_TOKEN": "a-production-core-system-token-for-tests",
}


def test_check_deploy_is_clean_with_production_settings() -> None:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x7!kq-" + "a9Zp3" * 12,
        "ALLOWED_HOSTS": "bpu.example.id",
        **PRODUCTION_NIK_KEYS,
        **PRODUCTION_GATEWAY_SECRETS,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the test suite for Playwright only
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _deploy_check(**env_overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x7!kq-" + "a9Zp3" * 12,
        "ALLOWED_HOSTS": "bpu.example.id",
        **env_overrides,
    }
    for name in ("DJANGO_ALLOW_ASYNC_UNSAFE", "NIK_HMAC_KEY", "NIK_ENCRYPTION_KEYS"):
        if name not in env_overrides:
            env.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_fails_on_the_development_nik_keys() -> None:
    result = _deploy_check()  # no NIK keys in the environment: the development defaults
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "enrollment.E002" in out and "enrollment.E003" in out


def test_check_deploy_fails_on_the_development_encryption_key_kept_as_an_old_key() -> None:
    from django.conf import settings

    keys = PRODUCTION_NIK_KEYS["NIK_ENCRYPTION_KEYS"] + "," + settings.DEV_NIK_ENCRYPTION_KEYS
    result = _deploy_check(
        NIK_HMAC_KEY=PRODUCTION_NIK_KEYS["NIK_HMAC_KEY"], NIK_ENCRYPTION_KEYS=keys
    )
    out = result.stdout + result.stderr
    assert result.returncode != 0 and "enrollment.E003" in out and "E002" not in out


def test_malformed_nik_keys_fail_even_the_plain_check() -> None:
    env = {**os.environ, "NIK_ENCRYPTION_KEYS": "k1:not-a-32-byte-key"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "enrollment.E001" in result.stderr + result.stdout


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": ""}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr
