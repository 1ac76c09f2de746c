"""Settings, read from the environment through environs: typed, and a value of the wrong type
stops start-up with an error naming the variable and the type expected.

DEBUG is off unless the environment turns it on: `make run` and `make test` set DEBUG=1; by hand
in development, `DEBUG=1 python manage.py ...`. With DEBUG off, SECRET_KEY must be set.
Production: SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL and the keys of
docs/operations.md, "Configuration"; `python manage.py check --deploy` is clean with those set.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
import pghistory
from celery.schedules import crontab
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from environs import Env, EnvValidationError

from bpjsportal.core.logging import TEXT_FORMAT as TEXT_LOG_FORMAT

django_stubs_ext.monkeypatch()  # lets ModelAdmin[Model] etc. be subscripted at run time

BASE_DIR = Path(__file__).resolve().parent.parent


# --- the environment -------------------------------------------------------------------------
# Every variable is read through environs, from the process environment only (no .env file, no
# ${...} expansion). Numbers, switches, the rate table and database URLs are typed: a value that
# does not parse stops every process at start-up with ImproperlyConfigured naming the variable,
# its value (never a URL's: it may hold a password) and the type expected. For those, an empty
# value is the default, as an unset one; for strings and lists the empty value is the value.
_env = Env(expand_vars=False)
_EXPECTED = {
    "bool": "a boolean: 1/0, true/false, yes/no or on/off",
    "int": "an integer, e.g. 5",
    "float": "a number, e.g. 0.5",
    "dict": "name=number pairs separated by commas, e.g. sms=2000,email=200",
    "dj_db_url": "a database URL, e.g. postgres://user@host:5432/name",
    "log_level": "a log level: DEBUG, INFO, WARNING, ERROR or CRITICAL",
}


def _typed(kind: str, name: str, default: Any, **options: Any) -> Any:
    if os.environ.get(name, "") == "":  # unset or empty: the default
        return default
    try:
        return getattr(_env, kind)(name, **options)
    except (EnvValidationError, ValueError) as error:  # ValueError: a dict item without "="
        shown = "" if kind == "dj_db_url" else f"={os.environ[name]!r}"
        raise ImproperlyConfigured(
            f"environment variable {name}{shown} is not valid: expected {_EXPECTED[kind]}"
        ) from error


def env_bool(name: str, default: bool) -> bool:
    return bool(_typed("bool", name, default))


def env_int(name: str, default: int) -> int:
    return int(_typed("int", name, default))


def env_float(name: str, default: float) -> float:
    return float(_typed("float", name, default))


def env_str(name: str, default: str) -> str:
    return str(_env.str(name, default))


def env_list(name: str, default: str) -> list[str]:
    """Comma-separated; blanks around items and empty items are dropped."""
    return [item.strip() for item in _env.list(name, default.split(",")) if item.strip()]


def env_float_dict(name: str, default: dict[str, float]) -> dict[str, float]:
    """`name=number,...`, e.g. sms=2000,email=200."""
    value = _typed("dict", name, default, subcast_values=float)
    return {str(key).strip(): float(number) for key, number in value.items()}


def env_db_url(name: str, default: str, **options: Any) -> dict[str, Any]:
    """A database URL, parsed by dj-database-url (`options`: its conn_max_age, ...)."""
    parsed = _typed("dj_db_url", name, None, **options)
    return dict(parsed if parsed is not None else dj_database_url.parse(default, **options))


DEBUG = env_bool("DEBUG", False)  # on only when asked for: `make run`, `make test`, DEBUG=1
DEV_SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - development default only
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY if DEBUG else "")
if not DEBUG and SECRET_KEY in ("", DEV_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set, and not to the development key, when DEBUG is off (the default)."
        " In development set DEBUG=1 (`make run` and `make test` do)."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, never a CDN
    "enrollment",
    "contributions",
    "reporting",
]

MIDDLEWARE = [
    "bpjsportal.core.request_id.RequestIdMiddleware",  # first: every later log line carries it
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "bpjsportal.core.middleware.RejectNulMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "enrollment.middleware.NikDisclosureLogMiddleware",  # every full NIK shown is logged
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "bpjsportal.urls"
WSGI_APPLICATION = "bpjsportal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "enrollment.context_processors.staff_role",
            ],
        },
    },
]

# PostgreSQL is the only database: no SQLite anywhere, tests included.
DATABASES = {
    "default": env_db_url(
        "DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/bpjsportal",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("TEST", {})["NAME"] = env_str(
    "TEST_DATABASE_NAME", "test_bpjsportal"
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- pgbouncer and the read replica (docs/operations.md, "Beyond one machine") -------------
# Behind pgbouncer in transaction pooling mode, set DB_DISABLE_SERVER_SIDE_CURSORS=1: a
# server-side cursor (.iterator()) would outlive the transaction that pgbouncer pins it to.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool(
    "DB_DISABLE_SERVER_SIDE_CURSORS", False
)
# REPLICA_DATABASE_URL = a streaming replica of DATABASE_URL. When set, the dashboard pages,
# exports and progress API read from it; all writes, reads in a transaction or after a write,
# and auth/sessions/roles use the primary (bpjsportal/core/routers.py). Unset: everything on
# default.
DATABASE_ROUTERS = ["bpjsportal.core.routers.ReplicaRouter"]
if env_str("REPLICA_DATABASE_URL", ""):
    DATABASES["replica"] = env_db_url(
        "REPLICA_DATABASE_URL",
        "",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
    DATABASES["replica"]["DISABLE_SERVER_SIDE_CURSORS"] = DATABASES["default"][
        "DISABLE_SERVER_SIDE_CURSORS"
    ]
    # Tests create no second database: the alias reads the test database of default.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "bpjsportal"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "enrollment:home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)  # one working day

# Bahasa Indonesia by default, English available.
LANGUAGE_CODE = "id"
LANGUAGES = [("id", _("Bahasa Indonesia")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Jakarta"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Where `collectstatic` writes (production: WhiteNoise serves it from there on each web host).
STATIC_ROOT = Path(env_str("STATIC_ROOT", "") or BASE_DIR / "var" / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "bpjsportal.core.static_storage.PortalStaticFilesStorage"
        )
    },
}

# /health/ready/ and /health/workers/ give each check this many seconds (bpjsportal/core/health.py)
HEALTH_CHECK_TIMEOUT_SECONDS = env_int("HEALTH_CHECK_TIMEOUT_SECONDS", 2)

# A 3-MB name must be refused with a clear 400, not read into memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)

# --- security (production values whenever DEBUG is off) -----------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # load balancers probe the health endpoints over plain HTTP on the private network
    SECURE_REDIRECT_EXEMPT = [r"^health/"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- access: login hardening, two-factor, sessions, CSP (docs/security.md) -------------
# Kept together so other blocks can change independently.
INSTALLED_APPS += [
    "axes",  # lockout after repeated failed logins
    "django_otp",
    "django_otp.plugins.otp_totp",  # TOTP second factor (required for admins)
    "django_otp.plugins.otp_static",  # single-use backup codes (bpjsportal/two_factor.py)
    "csp",
]
_AFTER = MIDDLEWARE.index("django.contrib.messages.middleware.MessageMiddleware") + 1
MIDDLEWARE[_AFTER:_AFTER] = [
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified()
    "bpjsportal.access.SecondFactorMiddleware",  # admins must pass TOTP before anything else
    "bpjsportal.access.IdleTimeoutMiddleware",
]
MIDDLEWARE.insert(1, "csp.middleware.CSPMiddleware")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as django-axes requires
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out username + IP
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Fallbacks: older hashes still verify and are upgraded to Argon2 at the next login.
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_CALLABLE = (
    "bpjsportal.access.lockout_response"  # templates/registration/locked_out.html
)
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "bpjsportal.access.client_ip"
ACCESS_PROXY_COUNT = env_int("ACCESS_PROXY_COUNT", 0)  # proxies appending to X-Forwarded-For
AXES_VERBOSE = False
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "BPU Portal")
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", True)
SESSION_IDLE_TIMEOUT = env_int("SESSION_IDLE_TIMEOUT", 30 * 60)  # seconds; 0 = off
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF],  # no 'unsafe-inline', no 'unsafe-eval'
        "style-src": [CSP_SELF],
        "img-src": [CSP_SELF, "data:"],
        "font-src": [CSP_SELF],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_SELF],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
    }
}
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY, CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY, {}

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "bpjsportal")
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Coverage statuses move as dates pass (active -> grace -> lapsed); just after midnight WIB.
    "contributions-refresh-coverage-statuses": {
        "task": "contributions.refresh_coverage_statuses",
        "schedule": crontab(hour=0, minute=5),
    },
    # Plan the day's payment reminders once (a second run adds nothing: unique key).
    "contributions-plan-reminders": {
        "task": "contributions.plan_reminders",
        "schedule": crontab(hour=0, minute=20),
    },
    # Hand reminders whose local sending window is open to workers, in batches; also picks up
    # reminders whose task was lost (lease expired) or held back by quiet hours.
    "contributions-dispatch-reminders": {
        "task": "contributions.dispatch_reminders",
        "schedule": 60.0,
    },
    # Autodebit: charge the mandates due soon (early, then again after midday for a channel
    # that was down); a second run adds and charges nothing twice.
    "contributions-plan-autodebit": {
        "task": "contributions.plan_autodebit",
        "schedule": crontab(hour="6,13", minute=0),
    },
    # Perisai commissions: last month's drafts on the 1st, to approve and pay by the 5th
    # (Perdir 13/PERDIR.02/042022); a rerun recomputes the drafts only.
    "contributions-compute-commissions": {
        "task": "contributions.compute_commissions",
        "schedule": crontab(day_of_month=1, hour=1, minute=0),
    },
    # ...and every night the running month's draft, so agents see this month's earnings so far
    "contributions-compute-commissions-current": {
        "task": "contributions.compute_commissions",
        "schedule": crontab(hour=1, minute=30),
        "kwargs": {"current": True},
    },
    # Reporting rollups: yesterday (final) and today after the status refresh ...
    "reporting-build-rollups": {
        "task": "reporting.build_rollups",
        "schedule": crontab(hour=0, minute=30),
    },
    # ... and today's rows again during the working day, so the dashboard keeps up.
    "reporting-refresh-rollups-today": {
        "task": "reporting.refresh_rollups_today",
        "schedule": crontab(minute="*/15", hour="6-22"),
    },
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Rollup builds (reporting/rollups/) work on groups of whole provinces of about this
# many participants at a time, inside the one transaction: every rollup key holds the province,
# so the groups' rows are disjoint, and the temp files are those of one group, not of the whole
# country (the year's build at 10 M participants otherwise needs tens of GB of temp space).
ROLLUP_BUILD_CHUNK = env_int("ROLLUP_BUILD_CHUNK", 1_500_000)
# How many database sessions build those groups at once (one core each on the database server;
# a build inside a caller's transaction always uses one). 1 = one session, one transaction.
ROLLUP_BUILD_WORKERS = env_int("ROLLUP_BUILD_WORKERS", 2)
# PostgreSQL work_mem of each build session (its sorts and hash tables: hash tables may take
# hash_mem_multiplier times this, 2 by default). Measured at 10 M participants:
# docs/benchmarks-history.md.
ROLLUP_BUILD_WORK_MEM = env_str("ROLLUP_BUILD_WORK_MEM", "512MB")
# The dashboard's figures are cached by the rollup and target state they were computed from
# (reporting/cache.py): a new build or target is a new key, so this is only how long an unused
# entry stays in Redis. 0 = no cache.
REPORTING_CACHE_SECONDS = env_int("REPORTING_CACHE_SECONDS", 3600)

# --- REST framework -------------------------------------------------------------------
REST_FRAMEWORK = {
    # None by default: every API view names its own — the API token (enrollment/api/base.py
    # ApiView), plus the staff's browser session where a page reads it (reporting/api.py). Never
    # HTTP Basic, which would take a staff password and skip the second factor; a view that
    # names none authenticates nobody, and IsAuthenticated refuses it.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "bpjsportal.core.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "BPU portal API",
    "VERSION": "1",
    "DESCRIPTION": "REST API v1 for syncing clients (docs/api.md). Authorization: Token <token>.",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation has a summary, one of these tags and an operation id of the convention in
    # enrollment/api/schema.py (tests/api/test_schema.py; docs/api.md "The schema").
    "TAGS": [
        {"name": "reference", "description": "Regions and occupations."},
        {"name": "participants", "description": "Register, read, change and list workers."},
        {"name": "payments", "description": "Quotes, dues, payments, sponsor batches, ledgers."},
        {"name": "bills", "description": "Payment codes and the biller protocol of channels."},
        {"name": "autodebit", "description": "A channel's side of standing orders."},
        {"name": "sync", "description": "Incremental sync of participants and payments."},
        {"name": "reporting", "description": "Progress toward the active-participant target."},
    ],
    # One name per choice set the bills API shares between its answers.
    "ENUM_NAME_OVERRIDES": {
        "BillStatusEnum": "contributions.models.Bill.Status",
        "BillOutcomeEnum": "contributions.models.BillNotification.Outcome",
    },
    # Every operation's error responses and empty parameters (bpjsportal/api_schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "bpjsportal.api_schema.document_errors",
    ],
}
# API limits: requests per client (None = unlimited) and the largest JSON body accepted.
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "1200/min") or None
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 2 * 1024 * 1024)
# Participant look-ups a payment channel client may make a day (GET /dues/, and payments that
# name an unknown number or the wrong amount) before 429 and an alert to the administrators;
# a client's own `daily_lookup_limit` (back office) overrides it. enrollment/api/lookups.py.
API_CHANNEL_LOOKUPS_PER_DAY = env_int("API_CHANNEL_LOOKUPS_PER_DAY", 20_000)
# The registration form's NIK check while typing, per user ("N/sec|min|hour|day"; empty = no
# limit), counted in Redis and failing open while it is down. enrollment/nik_check.py.
NIK_CHECK_RATE = env_str("NIK_CHECK_RATE", "30/min") or None
# Who gets security alerts by mail (comma-separated addresses; empty = the back office and the
# ERROR log line only). Mail goes through EMAIL_BACKEND.
ADMINS = [(address, address) for address in env_list("ADMINS", "")]
SERVER_EMAIL = env_str("SERVER_EMAIL", "bpu-portal@localhost")

# --- BPU rules kept in settings (sources: docs/architecture.md, "Regulation facts") ----
# Age limits at registration. Permenaker 5/2021 does not set a maximum for BPU; BPJS's
# public registration pages take workers from 15 (UU 13/2003 minimum working age) up to
# 65. Kept here so an admin can correct them without a code change.
BPU_MIN_AGE = env_int("BPU_MIN_AGE", 15)
BPU_MAX_AGE = env_int("BPU_MAX_AGE", 65)
# Due day of a month's contribution: "paling lambat tanggal 15 bulan Iuran yang bersangkutan"
# (PP 44/2015 as reported by Kontan). 1-28 so every month has it.
BPU_DUE_DAY = env_int("BPU_DUE_DAY", 15)
# "Apabila tanggal 15 jatuh pada hari libur, maka iuran dibayarkan pada hari kerja berikutnya"
# (same source): holidays are data (contributions.Holiday, the SKB 3 Menteri of each year);
# whether Saturday and Sunday are "hari libur" the rule does not say - government offices work
# Monday-Friday (Perpres 21/2023 Pasal 3), so by default a due day on a weekend moves too.
BPU_DUE_SKIPS_WEEKENDS = env_bool("BPU_DUE_SKIPS_WEEKENDS", True)
# Months of arrears before coverage lapses: at most 3 months (Perdir 22/PERDIR.02/072022; BPJS
# branch statements, media.alkhairaat.id 23 Jul 2025). BPU pays no late fine.
BPU_GRACE_MONTHS = env_int("BPU_GRACE_MONTHS", 3)
# The oldest payment date accepted, in days before today, on every path (API, pages, file
# imports, sponsor batches; contributions/services.py check_paid_at). A payment is quoted at its
# own date, so an old date could buy months at an old price or cover a lapse again; 35 days
# still take a channel's monthly statement. Not a regulation figure: an operating choice.
PAYMENT_MAX_AGE_DAYS = env_int("PAYMENT_MAX_AGE_DAYS", 35)

# --- the offline field app (contributions/field; docs/field-app.md) -------------------------
# After this many hours without a refresh the phone's copy of the reference data (rates,
# discount windows, holidays, occupations, regions) shows a warning on every page; it is
# refreshed whenever the phone is online. Offline cash is posted with its collection time, which
# PAYMENT_MAX_AGE_DAYS above limits like every payment date. Operating choices, not regulation.
FIELD_REFERENCE_MAX_AGE_HOURS = env_int("FIELD_REFERENCE_MAX_AGE_HOURS", 72)
# How many of the agent's own participants (the most recent) the phone keeps for offline work.
FIELD_PARTICIPANTS_MAX = env_int("FIELD_PARTICIPANTS_MAX", 2000)

# --- NIK keys (enrollment/pii.py; docs/security.md "Personal data") -------------------------
# NIK_HMAC_KEY: the key of the HMAC-SHA256 the NIK is found and kept unique by (>= 32 chars).
# NIK_HMAC_OLD_KEY: set only while `manage.py rotate_nik_keys --rehash` runs (look-ups try both).
# NIK_ENCRYPTION_KEYS: "id:base64-32-byte-key,..." for AES-256-GCM; the first encrypts, every
# listed key decrypts (docs/operations.md, "NIK keys"). The defaults below are for development
# only: `check --deploy` reports an error while either is in use.
DEV_NIK_HMAC_KEY = "dev-only-nik-hmac-key-never-in-production"
DEV_NIK_ENCRYPTION_KEYS = "dev0:ZGV2LW9ubHktbmlrLWtleS1kby1ub3QtdXNlISEhISE="
NIK_HMAC_KEY = env_str("NIK_HMAC_KEY", DEV_NIK_HMAC_KEY)
NIK_HMAC_OLD_KEY = env_str("NIK_HMAC_OLD_KEY", "")
NIK_ENCRYPTION_KEYS = env_str("NIK_ENCRYPTION_KEYS", DEV_NIK_ENCRYPTION_KEYS)
# KPJ_KEY: the key of the permutation that turns the KPJ sequence into numbers nobody can count
# through (enrollment/kpj.py; >= 32 characters). Never change it once numbers are issued.
DEV_KPJ_KEY = "dev-only-kpj-permutation-key-never-in-production"
KPJ_KEY = env_str("KPJ_KEY", DEV_KPJ_KEY)
# Who issues KPJ numbers (enrollment/core_system.py): "local" = the generator above (development:
# not BPJS numbers, and the participant card says so) or "http" = BPJS's core system at
# CORE_SYSTEM_URL with the bearer CORE_SYSTEM_TOKEN, CORE_SYSTEM_TIMEOUT seconds per call.
KPJ_ISSUER = env_str("KPJ_ISSUER", "local")
CORE_SYSTEM_URL = env_str("CORE_SYSTEM_URL", "")
CORE_SYSTEM_TOKEN = env_str("CORE_SYSTEM_TOKEN", "")
CORE_SYSTEM_TIMEOUT = env_float("CORE_SYSTEM_TIMEOUT", 10.0)

# --- bills (payment codes) and the biller protocol (docs/api.md, "Bills") -------------------
# BILL_CODE_KEY: the key of the permutation that turns the bill sequence into 16-digit codes
# nobody can count through (contributions/bills.py; >= 32 characters; never change it).
# CHANNEL_SIGNING_KEY: the master key from which each channel client's signing secret is
# derived (enrollment/api/signing.py): the secrets are never stored. Both development defaults
# fail `check --deploy` (contributions.E001) and stop the processes from starting with DEBUG off.
DEV_BILL_CODE_KEY = "dev-only-bill-code-permutation-key-never-in-production"
BILL_CODE_KEY = env_str("BILL_CODE_KEY", DEV_BILL_CODE_KEY)
DEV_CHANNEL_SIGNING_KEY = "dev-only-channel-signing-master-key-never-in-production"
CHANNEL_SIGNING_KEY = env_str("CHANNEL_SIGNING_KEY", DEV_CHANNEL_SIGNING_KEY)
# A bill's code stays open this long (the issue's default: 3 days).
BILL_EXPIRY_HOURS = env_int("BILL_EXPIRY_HOURS", 72)
# A notification signed more than this many seconds before or after the server clock is refused.
BILL_SIGNATURE_MAX_SKEW = env_int("BILL_SIGNATURE_MAX_SKEW", 300)
# Pay links in payment reminders (contributions/messaging/pay_links.py): the portal's public
# address as a participant's phone reaches it, and how many days a link works.
PORTAL_URL = env_str("PORTAL_URL", "http://127.0.0.1:8000")
PAY_LINK_DAYS = env_int("PAY_LINK_DAYS", 14)
# The participant's own page (contributions/self_service.py): one-time codes by SMS.
SELF_SERVICE_CODE_MINUTES = env_int("SELF_SERVICE_CODE_MINUTES", 5)
SELF_SERVICE_MAX_TRIES = env_int("SELF_SERVICE_MAX_TRIES", 5)
SELF_SERVICE_LOCK_MINUTES = env_int("SELF_SERVICE_LOCK_MINUTES", 15)
SELF_SERVICE_SENDS_PER_PARTICIPANT = env_int("SELF_SERVICE_SENDS_PER_PARTICIPANT", 3)
SELF_SERVICE_SEND_WINDOW_MINUTES = env_int("SELF_SERVICE_SEND_WINDOW_MINUTES", 15)
SELF_SERVICE_REQUESTS_PER_ADDRESS = env_int("SELF_SERVICE_REQUESTS_PER_ADDRESS", 20)
SELF_SERVICE_IDLE_SECONDS = env_int("SELF_SERVICE_IDLE_SECONDS", 900)
# Autodebit (contributions/autodebit.py): charge from this many days before the due date (the
# due day, BPU_DUE_DAY); a declined charge is tried again after RETRY_DAYS * 2^(try-1) days, up
# to MAX_ATTEMPTS tries, then the participant and the agent are told. A channel that does not
# answer is asked again TASK_RETRIES times, RETRY_BACKOFF * 2^n seconds apart, the same day.
AUTODEBIT_DAYS_BEFORE = env_int("AUTODEBIT_DAYS_BEFORE", 3)
AUTODEBIT_MAX_ATTEMPTS = env_int("AUTODEBIT_MAX_ATTEMPTS", 3)
AUTODEBIT_RETRY_DAYS = env_int("AUTODEBIT_RETRY_DAYS", 1)
AUTODEBIT_TASK_RETRIES = env_int("AUTODEBIT_TASK_RETRIES", 5)
AUTODEBIT_RETRY_BACKOFF = env_float("AUTODEBIT_RETRY_BACKOFF", 30.0)
AUTODEBIT_TIMEOUT = env_float("AUTODEBIT_TIMEOUT", 15.0)
AUTODEBIT_BATCH = env_int("AUTODEBIT_BATCH", 200)

# --- payment reminders (docs/reminders.md) -------------------------------------------------
# SMS and WhatsApp go through one HTTP gateway (POST {URL}/messages, Bearer key); its callbacks
# are signed with HMAC-SHA256 of their timestamp and body under REMINDER_CALLBACK_SECRET
# (contributions/messaging/callback_signature.py). The development defaults fail `check --deploy`
# (contributions.E001), and with DEBUG off the web and Celery processes refuse to start on them.
REMINDER_GATEWAY_URL = env_str("REMINDER_GATEWAY_URL", "http://127.0.0.1:8025")
DEV_REMINDER_GATEWAY_KEY = "dev-gateway-key"  # development default only
REMINDER_GATEWAY_KEY = env_str("REMINDER_GATEWAY_KEY", DEV_REMINDER_GATEWAY_KEY)
REMINDER_GATEWAY_TIMEOUT = env_float("REMINDER_GATEWAY_TIMEOUT", 5.0)
# Messages per gateway request: > 1 uses the gateway's bulk endpoint (POST {URL}/messages/batch,
# contributions/messaging/gateways.py); 1 sends one POST /messages per message (gateways without
# one).
REMINDER_GATEWAY_BATCH = env_int("REMINDER_GATEWAY_BATCH", 100)
DEV_REMINDER_CALLBACK_SECRET = "dev-callback-secret"  # noqa: S105 - development default only
REMINDER_CALLBACK_SECRET = env_str("REMINDER_CALLBACK_SECRET", DEV_REMINDER_CALLBACK_SECRET)
# A callback signed more than this many seconds before (or after) now is refused: a captured
# callback (a forged STOP's template) cannot be replayed later.
REMINDER_CALLBACK_MAX_AGE = env_int("REMINDER_CALLBACK_MAX_AGE", 300)
REMINDER_DEFAULT_CHANNEL = env_str("REMINDER_DEFAULT_CHANNEL", "sms")
# Messages per second per channel, shared by all workers (Redis token bucket).
REMINDER_RATE_LIMITS = env_float_dict(
    "REMINDER_RATE_LIMITS", {"sms": 2000.0, "whatsapp": 2000.0, "email": 200.0}
)
REMINDER_BATCH_SIZE = env_int("REMINDER_BATCH_SIZE", 200)
# A dispatched reminder still queued after this many seconds is dispatched again (lost task).
REMINDER_DISPATCH_LEASE = env_int("REMINDER_DISPATCH_LEASE", 900)
REMINDER_DISPATCH_MAX_PER_RUN = env_int("REMINDER_DISPATCH_MAX_PER_RUN", 120_000)
REMINDER_MAX_ATTEMPTS = env_int("REMINDER_MAX_ATTEMPTS", 8)
REMINDER_RETRY_BACKOFF = env_float("REMINDER_RETRY_BACKOFF", 2.0)
# Local sending window in the participant's province time zone (WIB/WITA/WIT): [start, end).
REMINDER_SEND_FROM_HOUR = env_int("REMINDER_SEND_FROM_HOUR", 8)
REMINDER_SEND_UNTIL_HOUR = env_int("REMINDER_SEND_UNTIL_HOUR", 20)
# A reminder that could not be sent within this many days of its planned day is skipped.
REMINDER_MAX_DELAY_DAYS = env_int("REMINDER_MAX_DELAY_DAYS", 2)
# Holdout and uplift (contributions/messaging/uplift.py; docs/reminders.md "Holdout and uplift"):
# the key of the hash that draws the arms (empty = derived from SECRET_KEY; changing it re-draws
# only months not yet planned: recorded arms stay), and the smallest arm, per rule, month and
# payment window, for which the uplift page prints a rate difference and its interval.
REMINDER_HOLDOUT_KEY = env_str("REMINDER_HOLDOUT_KEY", "")
REMINDER_UPLIFT_MIN_ARM = env_int("REMINDER_UPLIFT_MIN_ARM", 30)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "noreply@bpu-portal.local")

# --- faults: Redis and PostgreSQL outages (docs/operations.md "Faults", docs/security.md) ------
# Redis down: the cache degrades to misses (bpjsportal/core/cache.py) with short socket timeouts and
# a per-process circuit breaker (bpjsportal/core/redis_status.py: probe result kept REDIS_HEALTH_TTL
# seconds); the API throttle fails open; requests queue Celery tasks in the outbox table
# (contributions/messaging/outbox.py), relayed to the broker every OUTBOX_RELAY_SECONDS by beat (or
# `manage.py relay_outbox`); pages show a banner (context processor below).
CACHES["default"]["BACKEND"] = "bpjsportal.core.cache.ResilientRedisCache"
CACHES["default"]["OPTIONS"] = {  # type: ignore[assignment]  # CACHES was inferred as str->str
    "socket_connect_timeout": env_float("CACHE_SOCKET_TIMEOUT", 0.5),
    "socket_timeout": env_float("CACHE_SOCKET_TIMEOUT", 0.5),
}
REDIS_HEALTH_TIMEOUT = env_float("REDIS_HEALTH_TIMEOUT", 0.5)
REDIS_HEALTH_TTL = env_float("REDIS_HEALTH_TTL", 5.0)
TEMPLATES[0]["OPTIONS"]["context_processors"].append(  # type: ignore[index]
    "bpjsportal.context_processors.service_status"
)
OUTBOX_RELAY_SECONDS = env_float("OUTBOX_RELAY_SECONDS", 5.0)
OUTBOX_RELAY_BATCH = env_int("OUTBOX_RELAY_BATCH", 500)
OUTBOX_RELAY_MAX_PER_RUN = env_int("OUTBOX_RELAY_MAX_PER_RUN", 50_000)
OUTBOX_KEEP_DAYS = env_int("OUTBOX_KEEP_DAYS", 7)  # published rows are deleted after this
CELERY_BEAT_SCHEDULE["contributions-relay-outbox"] = {
    "task": "contributions.relay_outbox",
    "schedule": OUTBOX_RELAY_SECONDS,
}
# Messages sent at once from write paths, through the outbox
# (contributions/messaging/notifications.py).
NOTIFY_ON_REGISTRATION = env_bool("NOTIFY_ON_REGISTRATION", True)
NOTIFY_ON_PAYMENT = env_bool("NOTIFY_ON_PAYMENT", True)
# A worker killed mid-task: CELERY_TASK_ACKS_LATE (above) acknowledges a message only after its
# task finished, CELERY_TASK_REJECT_ON_WORKER_LOST requeues it when the pool process running it
# dies (SIGKILL, OOM), and with a whole worker lost Redis hands the unacknowledged message out
# again after the visibility timeout; every task is idempotent, so a second run changes nothing.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
}
# PostgreSQL restarted mid-request: a 503 page or JSON error (bpjsportal/core/middleware.py,
# bpjsportal/core/errors.py, bpjsportal/core/api/errors.py), never a 500; conn_health_checks
# (DATABASES
# above) reconnects on the next request.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "bpjsportal.core.middleware.DatabaseUnavailableMiddleware",
)
# Errors raised outside views (a middleware loading the session) reach handler500 in urls.py.

# Log lines: readable text in development, one JSON object per line in production (time, level,
# logger, request id, user or API client, message: bpjsportal/core/logging.py JsonFormatter);
# LOG_FORMAT=json|text overrides. The request id: bpjsportal/core/request_id.py.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": TEXT_LOG_FORMAT},
        "json": {"()": "bpjsportal.core.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": _typed("log_level", "LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Django's own default handlers (django.utils.log.DEFAULT_LOGGING) are replaced by ours,
        # so the personal-data mask (below) applies to request and runserver logs too.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- the optional error tracker (docs/operations.md, "Errors") -----------------------------
# Unhandled errors of requests and tasks to Sentry or a compatible service, personal data masked
# as in the logs (bpjsportal/core/error_tracking.py). Off unless SENTRY_DSN is set.
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    from bpjsportal.core import error_tracking

    error_tracking.init(
        SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "development" if DEBUG else "production"),
        release=env_str("SENTRY_RELEASE", ""),
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
    )

# --- audit trail and log masking (docs/security.md "Audit trail", "Logs") ------------------
# Database triggers (django-pghistory on django-pgtrigger) record every insert/update/delete of
# participants, payments, ledger entries, targets, rate schedules, API clients, staff roles and
# users into the append-only tables of the `audit` app (bpjsportal/audit/). The middleware
# attaches who (user / API client) and from where (IP, URL) to each change; Celery tasks and
# management commands label their own changes.
INSTALLED_APPS += ["pgtrigger", "pghistory", "bpjsportal.audit"]
# After the two-factor middlewares: they replace request.user, which pghistory's request
# wrapper would otherwise evaluate at once (a query per request, and a 500 instead of the 503
# page when the database is down).
MIDDLEWARE.insert(
    MIDDLEWARE.index("bpjsportal.access.IdleTimeoutMiddleware") + 1,
    "bpjsportal.audit.middleware.AuditContextMiddleware",
)
# Copied foreign keys in event tables are plain columns: no index, no constraint (the event
# tables index only what the history pages look up).
PGHISTORY_FOREIGN_KEY_FIELD = pghistory.ForeignKey(db_index=False)
# An event's time is the moment of the change, not the start of its transaction.
PGHISTORY_CREATED_AT_FUNCTION = "clock_timestamp()"
# Behind exactly one trusted reverse proxy, the request header holding the client address it
# appends (e.g. HTTP_X_FORWARDED_FOR); empty = REMOTE_ADDR.
AUDIT_CLIENT_IP_HEADER = env_str("AUDIT_CLIENT_IP_HEADER", "")
# Every log record passes a filter that masks NIK-like numbers, phone numbers, API tokens and
# password/token fields (bpjsportal/core/logging.py), on every handler.
LOGGING["filters"] = {
    "mask_personal_data": {"()": "bpjsportal.core.logging.MaskPersonalDataFilter"},
    "request_context": {"()": "bpjsportal.core.request_id.RequestContextFilter"},
}
for _handler in LOGGING["handlers"].values():  # type: ignore[attr-defined]
    _handler.setdefault("filters", []).extend(["mask_personal_data", "request_context"])

# `make run`'s demo (manage.py seed_demo --workers overrides): how many workers it registers.
DEMO_WORKERS = env_int("DEMO_WORKERS", 20_000)

# --- metrics (docs/operations.md "Metrics"; bpjsportal/core/metrics.py) ----------------------
# GET /metrics answers Prometheus' text format to `Authorization: Bearer <METRICS_TOKEN>` only
# (empty = off: 404). With DEBUG off the token must be at least 32 characters. Several processes
# (gunicorn workers, Celery pool children) add up through files in the directory named by the
# environment variable PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself, not here).
# METRICS_WORKER_LISTEN ("host:port", empty = off): a Celery worker's own /metrics, same token.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
METRICS_WORKER_LISTEN = env_str("METRICS_WORKER_LISTEN", "")
if METRICS_TOKEN and not DEBUG and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 characters (or empty: off)")
MIDDLEWARE.insert(  # right after the request id: every later middleware's answer is counted
    MIDDLEWARE.index("bpjsportal.core.request_id.RequestIdMiddleware") + 1,
    "bpjsportal.core.metrics.MetricsMiddleware",
)
if not DEBUG:  # scraped over plain http on the private network, like the health endpoints
    SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]
