"""The environment of a production process, for tests that start one (docs/operations.md):
DEBUG off, a real SECRET_KEY, the NIK and KPJ keys, the gateway's secrets, the public host name;
no development default anywhere."""

from __future__ import annotations

import os

from tests.bpjsportal.test_settings import PRODUCTION_GATEWAY_SECRETS, PRODUCTION_NIK_KEYS

HOST = "bpu.example.id"
SECRETS = {
    "SECRET_KEY": "x7!kq-" + "a9Zp3" * 12,
    **PRODUCTION_NIK_KEYS,
    **PRODUCTION_GATEWAY_SECRETS,
}


def production_env(*, without: tuple[str, ...] = (), **overrides: str) -> dict[str, str]:
    """os.environ (the test database, Redis, the test queue) with production settings; the
    secrets named in `without` are left unset, so their development defaults apply."""
    env = {**os.environ, "DEBUG": "0", "ALLOWED_HOSTS": HOST, **SECRETS, **overrides}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the test suite for Playwright only
    for name in without:
        env.pop(name, None)
    return env
