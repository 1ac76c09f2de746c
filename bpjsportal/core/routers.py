"""Read-replica routing (docs/operations.md, "Beyond one machine").

With a `replica` database alias configured (REPLICA_DATABASE_URL), the reads of the dashboard
pages, the exports and the progress API go to the streaming replica; everything else stays on
the primary (`default`):

- only code run inside `replica_reads()` (the `use_replica` decorator on those views) may read
  from the replica; every other read - forms, admin, the API, Celery tasks - reads the primary;
- every write goes to the primary, and once code inside `replica_reads()` has written through
  the ORM, its later reads go to the primary too (it must see its own write);
- a read while the primary connection is inside a transaction (`atomic()`) goes to the primary:
  a transaction must see one database, and its own uncommitted rows;
- authentication, sessions, staff roles and API credentials are always read from the primary,
  so a log-out, a revoked token or a changed role counts at once, not after the replica's lag.

Without the alias every read and write goes to `default`, as before. Raw SQL on
`connection.cursor()` is not routed: it runs on `default` unless it names another alias.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections
from django.db.models import Model

PRIMARY = "default"
REPLICA = "replica"

# Apps and models read from the primary even inside replica_reads(): who may see what.
PRIMARY_ONLY_APPS = frozenset(
    {"auth", "sessions", "contenttypes", "admin", "axes", "otp_totp", "otp_static", "django_otp"}
)
PRIMARY_ONLY_MODELS = frozenset({"enrollment.staffprofile", "enrollment.apiclient"})


@dataclass
class _ReplicaReads:
    wrote: bool = False


_current: contextvars.ContextVar[_ReplicaReads | None] = contextvars.ContextVar(
    "replica_reads", default=None
)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads inside may be served by the replica (when configured); nested uses share one
    state, so a write anywhere inside sends the rest of the block's reads to the primary."""
    if _current.get() is not None:
        yield
        return
    token = _current.set(_ReplicaReads())
    try:
        yield
    finally:
        _current.reset(token)


F = TypeVar("F", bound=Callable[..., Any])


def use_replica(view: F) -> F:
    """Decorator for a view function or an APIView method whose reads may lag the primary by
    the replica's delay (seconds at most): dashboards, exports, the progress API. Put it under
    @login_required, so the user is loaded before."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with replica_reads():
            return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class ReplicaRouter:
    """The decisions described in the module docstring; installed in settings.DATABASE_ROUTERS
    whether or not a replica is configured (then it always answers `default`)."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        state = _current.get()
        if state is None or state.wrote or not replica_configured():
            return PRIMARY
        meta = model._meta
        if meta.app_label in PRIMARY_ONLY_APPS or meta.label_lower in PRIMARY_ONLY_MODELS:
            return PRIMARY
        if connections[PRIMARY].in_atomic_block:
            return PRIMARY
        return REPLICA

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        state = _current.get()
        if state is not None:
            state.wrote = True
        return PRIMARY

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        # The replica is a copy of the primary: an object from either may point at the other.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # The replica is read-only and follows the primary's WAL: migrate the primary only.
        return db == PRIMARY
