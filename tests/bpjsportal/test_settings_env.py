"""The settings read the environment through environs (issue 22): typed values, an error that
names the variable and the type expected, DEBUG off unless asked for.

Each case imports the settings in a child process of its own, with the environment it sets and
no DEBUG or SECRET_KEY from this test run (pytest-env sets DEBUG=1 for the suite itself).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "bpjsportal" / "settings.py"
A_SECRET_KEY = "x7!kq-" + "a9Zp3" * 12
# What the child prints once the settings loaded: the values the cases look at.
PRINT_SETTINGS = """
import json
from bpjsportal import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "SECRET_KEY_IS_DEV": s.SECRET_KEY == s.DEV_SECRET_KEY,
    "LOG_FORMAT": s.LOG_FORMAT,
    "SECURE_SSL_REDIRECT": getattr(s, "SECURE_SSL_REDIRECT", False),
    "AXES_FAILURE_LIMIT": s.AXES_FAILURE_LIMIT,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "REMINDER_RATE_LIMITS": s.REMINDER_RATE_LIMITS,
    "SESSION_EXPIRE_AT_BROWSER_CLOSE": s.SESSION_EXPIRE_AT_BROWSER_CLOSE,
    "REDIS_HEALTH_TTL": s.REDIS_HEALTH_TTL,
}))
"""
# Removed from the child's environment unless a case sets them.
CLEARED = (
    "DEBUG",
    "SECRET_KEY",
    "AXES_FAILURE_LIMIT",
    "ALLOWED_HOSTS",
    "REMINDER_RATE_LIMITS",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "REDIS_HEALTH_TTL",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "SENTRY_DSN",
)


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    child = {k: v for k, v in os.environ.items() if k not in CLEARED}
    child.update(env)
    return subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=ROOT,
        env=child,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def loaded(**env: str) -> dict[str, object]:
    result = load_settings(**env)
    assert result.returncode == 0, result.stderr[-3000:]
    values: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return values


def refused(**env: str) -> str:
    """The last line of the traceback of a start-up the settings refused."""
    result = load_settings(**env)
    assert result.returncode != 0, result.stdout
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AXES_FAILURE_LIMIT", "abc", "expected an integer"),  # int
        ("AXES_FAILURE_LIMIT", "5.5", "expected an integer"),
        ("SESSION_EXPIRE_AT_BROWSER_CLOSE", "sometimes", "expected a boolean"),  # bool
        ("REDIS_HEALTH_TTL", "soon", "expected a number"),  # float
        # a list of name=number pairs: an item without "=", and one whose number is not one
        ("REMINDER_RATE_LIMITS", "sms=2000,whatsapp", "expected name=number pairs"),
        ("REMINDER_RATE_LIMITS", "sms=2000,email=lots", "expected name=number pairs"),
        ("LOG_LEVEL", "loud", "expected a log level"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable_and_type(
    name: str, value: str, expected: str
) -> None:
    line = refused(DEBUG="1", **{name: value})
    assert line.startswith("django.core.exceptions.ImproperlyConfigured: "), line
    assert f"environment variable {name}={value!r} is not valid: {expected}" in line


def test_a_bad_debug_value_is_refused_not_taken_for_off() -> None:
    line = refused(DEBUG="maybe", SECRET_KEY=A_SECRET_KEY)
    assert "environment variable DEBUG='maybe' is not valid: expected a boolean" in line


def test_a_bad_database_url_is_named_without_its_value() -> None:
    result = load_settings(DEBUG="1", DATABASE_URL="postgres://bpu:s3cret-pw@db:notaport/bpu")
    assert result.returncode != 0
    line = result.stderr.strip().splitlines()[-1]
    assert "environment variable DATABASE_URL is not valid: expected a database URL" in line
    assert "s3cret-pw" not in result.stderr  # a URL may hold a password: never shown


def test_debug_unset_is_production_and_demands_a_secret_key() -> None:
    line = refused()  # neither DEBUG nor SECRET_KEY
    assert "SECRET_KEY must be set" in line and "DEBUG is off (the default)" in line
    assert "DEBUG=1" in line  # says how to run in development


def test_debug_unset_with_a_secret_key_is_off() -> None:
    values = loaded(SECRET_KEY=A_SECRET_KEY)
    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is True and values["LOG_FORMAT"] == "json"
    assert loaded(SECRET_KEY=A_SECRET_KEY, DEBUG="")["DEBUG"] is False  # empty: the default


def test_debug_on_when_asked_for_takes_the_development_key() -> None:
    values = loaded(DEBUG="1")
    assert values["DEBUG"] is True and values["SECRET_KEY_IS_DEV"] is True
    assert values["SECURE_SSL_REDIRECT"] is False and values["LOG_FORMAT"] == "text"
    assert loaded(DEBUG="yes")["DEBUG"] is True
    assert "SECRET_KEY must be set" in refused(DEBUG="off")


def test_typed_values_and_defaults() -> None:
    values = loaded(
        DEBUG="1",
        AXES_FAILURE_LIMIT="7",
        ALLOWED_HOSTS=" bpu.example.id , ,api.bpu.example.id",
        REMINDER_RATE_LIMITS="sms=10, whatsapp=2.5",
        SESSION_EXPIRE_AT_BROWSER_CLOSE="off",
        REDIS_HEALTH_TTL="",  # empty: the default
    )
    assert values["AXES_FAILURE_LIMIT"] == 7
    assert values["ALLOWED_HOSTS"] == ["bpu.example.id", "api.bpu.example.id"]
    assert values["REMINDER_RATE_LIMITS"] == {"sms": 10.0, "whatsapp": 2.5}
    assert values["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is False
    assert values["REDIS_HEALTH_TTL"] == 5.0
    defaults = loaded(DEBUG="1")
    assert defaults["AXES_FAILURE_LIMIT"] == 5
    assert defaults["REMINDER_RATE_LIMITS"] == {"sms": 2000.0, "whatsapp": 2000.0, "email": 200.0}
    assert defaults["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True


def test_every_variable_is_read_through_the_typed_helpers() -> None:
    """No `os.environ` in the settings outside `_typed` (which only tells unset from set): a
    variable read by hand would skip the types and the error naming it."""
    tree = ast.parse(SETTINGS.read_text())
    helper = next(
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "_typed"
    )
    inside = {id(node) for node in ast.walk(helper)}
    by_hand = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in {"environ", "getenv"}
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
        and id(node) not in inside
    ]
    assert by_hand == [], f"settings.py reads os.environ by hand on lines {by_hand}"
