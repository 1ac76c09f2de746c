"""Liveness and readiness for load balancers, orchestrators and monitoring (docs/operations.md,
"Health endpoints"), built on django-health-check's checks and view.

- `/health/live/`: the process answers HTTP. Touches nothing else, so a database outage never
  makes an orchestrator restart healthy web processes (which would not bring PostgreSQL back).
- `/health/ready/`: this web process can serve: PostgreSQL answers `SELECT 1`, every migration
  is applied, Redis answers (the cache and, when it is another server, the Celery broker). A
  load balancer takes a node that fails it out of rotation. Celery workers are not part of it:
  a web node is still useful when the workers are down (pages and the API work; reminders wait).
- `/health/workers/`: at least one Celery worker answers a ping and every queue the portal
  routes tasks to has a consumer — for monitoring and for the worker service's own probe.

Each answers JSON (`{"status": "ok"|"unavailable", "checks": {...}}`), 200 or 503, never cached,
without a login: the messages name a check and a reason, never a host, user or password
(django-health-check's messages carry no credentials; the Redis URL is not in its repr).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET
from health_check.base import HealthCheck, HealthCheckResult
from health_check.checks import Database
from health_check.contrib.celery import Ping
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView
from redis.asyncio import Redis as RedisClient

UNAVAILABLE = 503


@dataclasses.dataclass
class MigrationsApplied(HealthCheck):
    """Every migration the code knows is applied to the database (a node started before
    `manage.py migrate` finished, or from a newer release than the schema, is not ready)."""

    alias: str = "default"

    def run(self) -> None:
        connection = connections[self.alias]
        try:
            executor = MigrationExecutor(connection)
            pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            raise ServiceUnavailable("database unavailable") from exc
        finally:
            connection.close()  # this runs in a pool thread: do not leave its connection open
        if pending:
            raise ServiceUnavailable(f"{len(pending)} migration(s) not applied")


def _redis(url: str) -> Redis:
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    return Redis(
        client_factory=lambda: RedisClient.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
    )


def ready_checks() -> list[HealthCheck]:
    checks: list[HealthCheck] = [Database(), MigrationsApplied(), _redis(settings.REDIS_URL)]
    if settings.CELERY_BROKER_URL != settings.REDIS_URL:
        checks.append(_redis(settings.CELERY_BROKER_URL))
    return checks


def worker_checks() -> list[HealthCheck]:
    # Ping's app is Celery's current app: the project's (bpjsportal/__init__.py loads it), so
    # its queues are the ones checked for a consumer.
    return [Ping(timeout=timedelta(seconds=settings.HEALTH_CHECK_TIMEOUT_SECONDS))]


def _name(result: HealthCheckResult) -> str:
    labels = result.check.labels
    name = labels.get("check", type(result.check).__name__)
    return f"{name}:{labels['alias']}" if "alias" in labels else name


class _JsonHealth(HealthCheckView):
    """django-health-check's view, answering JSON with 503 (not its 500) when a check fails:
    503 is what load balancers and Kubernetes read as "not ready, try elsewhere"."""

    make_checks: Any = staticmethod(ready_checks)

    def get_checks(self) -> Iterable[HealthCheck]:
        return self.make_checks()

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with self.get_executor() as executor:
            results = await asyncio.gather(
                *(check.get_result(executor) for check in self.get_checks())
            )
        failed = any(r.error for r in results)
        body = {
            "status": "unavailable" if failed else "ok",
            "checks": {
                _name(r): {
                    "ok": r.error is None,
                    "error": str(r.error) if r.error else "",
                    "seconds": round(r.time_taken, 4),
                }
                for r in results
            },
        }
        return JsonResponse(body, status=UNAVAILABLE if failed else 200)


ready = _JsonHealth.as_view(make_checks=ready_checks)
workers = _JsonHealth.as_view(make_checks=worker_checks)


@require_GET
def live(request: HttpRequest) -> HttpResponse:
    response = JsonResponse({"status": "ok"})
    add_never_cache_headers(response)
    return response
