"""Prometheus metrics (docs/operations.md, "Metrics"), built on the maintained `prometheus_client`.

- `/metrics` (bpjsportal/urls.py, `view`): the text format, only with `Authorization: Bearer
  <METRICS_TOKEN>` (compared in constant time; wrong or missing: 401 without detail; the
  setting empty: 404, the endpoint is off). No session, login, second factor or CSRF.
- HTTP: `MetricsMiddleware` (right after the request-id middleware) counts every request by
  method, route (the URL pattern's name, never the raw path: no ids in labels) and status class,
  times it, and tallies the database queries it ran (a connection `execute_wrapper`: a counter
  and a clock per query, nothing more).
- Business events, counted after their transaction commits (`transaction.on_commit`: a rolled
  back write is never counted): payments applied, money held in suspense, reminders decided
  (sent, failed, skipped) and gateway delivery reports.
- Celery: task outcomes and run times from the worker's signals; the queue length is read from
  the broker (Redis LLEN) at scrape time by `CeleryQueueCollector`.

Several processes: with the environment variable PROMETHEUS_MULTIPROC_DIR set (before any
process starts: prometheus_client reads it when it is imported), every process (gunicorn
workers, Celery's pool children) writes its values to files in that directory and a scrape adds
them up (`multiprocess.MultiProcessCollector`). gunicorn's `child_exit` hook and Celery's
`worker_process_shutdown` (connected here) call `multiprocess.mark_process_dead`. Unset: one
process, the default registry (with the process and GC collectors).

A Celery worker host is scraped on its own port (METRICS_WORKER_LISTEN, "host:port"; started in
the worker's main process when it is ready), with the same token.

The Celery signal handlers are connected when this module is imported: every process that runs
tasks imports it (the task modules import the services that count).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
    worker_process_shutdown,
    worker_ready,
)
from django.conf import settings
from django.db import connections, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_safe
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
)
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "unmatched"  # a path no URL pattern matches (a 404 of the resolver, a scanner)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# --- HTTP -----------------------------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "bpu_http_requests",
    "HTTP requests answered, by method, route (URL pattern name) and status class.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "bpu_http_request_duration_seconds",
    "Time to answer an HTTP request (to the response object; a streamed body is not timed).",
    ["method", "route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
HTTP_IN_PROGRESS = Gauge(
    "bpu_http_requests_in_progress",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
)

# --- database (queries run by requests) -----------------------------------------------------------
DB_QUERIES = Counter(
    "bpu_db_queries", "Database queries run while answering HTTP requests.", ["alias"]
)
DB_QUERY_SECONDS = Counter(
    "bpu_db_query_seconds",
    "Time spent in database queries while answering HTTP requests (seconds).",
    ["alias"],
)
DB_QUERY_ERRORS = Counter(
    "bpu_db_query_errors",
    "Database queries of HTTP requests that raised an error (the database down, a conflict).",
    ["alias"],
)
DB_QUERIES_PER_REQUEST = Histogram(
    "bpu_http_request_db_queries",
    "Database queries per HTTP request.",
    buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)

# --- Celery ---------------------------------------------------------------------------------------
CELERY_TASKS = Counter(
    "bpu_celery_tasks",
    "Celery tasks finished in the workers, by task name and outcome (succeeded, failed, retried).",
    ["task", "outcome"],
)
CELERY_TASK_DURATION = Histogram(
    "bpu_celery_task_duration_seconds",
    "Run time of Celery tasks in the workers.",
    ["task"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)

# --- business events ------------------------------------------------------------------------------
PAYMENTS_APPLIED = Counter(
    "bpu_payments_applied",
    "Payments posted to the ledger (committed), by payment channel.",
    ["channel"],
)
PAYMENTS_APPLIED_RUPIAH = Counter(
    "bpu_payments_applied_rupiah",
    "Rupiah of the payments posted to the ledger (committed), by payment channel.",
    ["channel"],
)
PAYMENTS_SUSPENSE = Counter(
    "bpu_payments_suspense",
    "Payments held in suspense instead of applied (committed), by reason.",
    ["reason"],
)
PAYMENTS_SUSPENSE_RUPIAH = Counter(
    "bpu_payments_suspense_rupiah",
    "Rupiah held in suspense (committed), by reason.",
    ["reason"],
)
REMINDERS = Counter(
    "bpu_reminders",
    "Reminder messages decided by a delivery batch (committed), by channel, kind and outcome "
    "(sent, failed, skipped_paid, skipped_quiet_hours, opted_out).",
    ["channel", "kind", "outcome"],
)
REMINDER_DELIVERY_REPORTS = Counter(
    "bpu_reminder_delivery_reports",
    "Gateway delivery reports that changed a reminder (committed), by status (delivered, failed).",
    ["status"],
)
# the reminder states a delivery batch ends in (contributions.models.ReminderState values)
REMINDER_OUTCOMES = frozenset(
    {"sent", "failed", "skipped_paid", "skipped_quiet_hours", "opted_out"}
)


def _after_commit(action: Callable[[], None], using: str | None = None) -> None:
    """Run `action` once the current transaction commits (at once outside one); a failure in
    it is logged by Django and never undoes or stops anything else (robust)."""
    transaction.on_commit(action, using=using, robust=True)


class _Money(Protocol):
    @property
    def channel(self) -> str: ...
    @property
    def amount(self) -> int: ...


class _Held(Protocol):
    @property
    def reason(self) -> str: ...
    @property
    def amount(self) -> int: ...


class _Decided(Protocol):
    @property
    def channel(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> str: ...


def payments_applied(payments: Iterable[_Money]) -> None:
    """Count posted payments when their transaction commits."""
    count: Tally[str] = Tally()
    rupiah: Tally[str] = Tally()
    for payment in payments:
        count[str(payment.channel)] += 1
        rupiah[str(payment.channel)] += int(payment.amount)
    if not count:
        return

    def record() -> None:
        for channel, n in count.items():
            PAYMENTS_APPLIED.labels(channel).inc(n)
            PAYMENTS_APPLIED_RUPIAH.labels(channel).inc(rupiah[channel])

    _after_commit(record)


def suspense_held(item: _Held) -> None:
    """Count money held in suspense when its transaction commits."""
    reason, amount = str(item.reason), int(item.amount)

    def record() -> None:
        PAYMENTS_SUSPENSE.labels(reason).inc()
        PAYMENTS_SUSPENSE_RUPIAH.labels(reason).inc(amount)

    _after_commit(record)


def reminders_decided(reminders: Iterable[_Decided]) -> None:
    """Count the reminders a delivery batch sent, failed or skipped, when it commits (those
    still queued: a retry or the next sending window, are counted when they are decided)."""
    tally: Tally[tuple[str, str, str]] = Tally(
        (str(r.channel), str(r.kind), str(r.state))
        for r in reminders
        if str(r.state) in REMINDER_OUTCOMES
    )
    if not tally:
        return

    def record() -> None:
        for labels, n in tally.items():
            REMINDERS.labels(*labels).inc(n)

    _after_commit(record)


def delivery_reported(status: str) -> None:
    """Count a gateway delivery report that changed a reminder, when it commits."""
    _after_commit(lambda: REMINDER_DELIVERY_REPORTS.labels(str(status)).inc())


# --- the middleware -------------------------------------------------------------------------------
def route_of(request: HttpRequest) -> str:
    """The matched URL pattern's name ("enrollment:participant"), else its pattern
    ("api/v1/…/<int:pk>/"), else UNMATCHED: never the raw path (ids and any text a client sends
    would make a new series each)."""
    match = request.resolver_match
    if match is None:  # answered before the view was resolved (a redirect of a middleware)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED
    if match.url_name:
        return str(match.view_name)
    return str(match.route) or UNMATCHED


class _QueryTally:
    """Counts and times the queries of one request on every database alias."""

    def __init__(self) -> None:
        self.count: Tally[str] = Tally()
        self.seconds: dict[str, float] = {}
        self.errors: Tally[str] = Tally()

    @contextmanager
    def wrapping(self) -> Iterator[None]:
        with ExitStack() as stack:
            for conn in connections.all():
                stack.enter_context(conn.execute_wrapper(self._wrapper(conn.alias)))
            yield

    def _wrapper(self, alias: str) -> Callable[..., Any]:
        def wrapper(
            execute: Callable[..., Any], sql: Any, params: Any, many: bool, ctx: Any
        ) -> Any:
            start = time.perf_counter()
            try:
                return execute(sql, params, many, ctx)
            except Exception:
                self.errors[alias] += 1
                raise
            finally:
                self.count[alias] += 1
                self.seconds[alias] = self.seconds.get(alias, 0.0) + time.perf_counter() - start

        return wrapper

    def record(self) -> None:
        for alias, n in self.count.items():
            DB_QUERIES.labels(alias).inc(n)
            DB_QUERY_SECONDS.labels(alias).inc(self.seconds[alias])
        for alias, n in self.errors.items():
            DB_QUERY_ERRORS.labels(alias).inc(n)
        DB_QUERIES_PER_REQUEST.observe(sum(self.count.values()))


class MetricsMiddleware:
    """Counts and times every request (settings.MIDDLEWARE, right after RequestIdMiddleware:
    the answers of every later middleware, a 503 of the database guard included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        queries = _QueryTally()
        start = time.perf_counter()
        with HTTP_IN_PROGRESS.track_inprogress(), queries.wrapping():
            response = self.get_response(request)
        elapsed = time.perf_counter() - start
        method = request.method if request.method in METHODS else "other"
        route = route_of(request)
        HTTP_REQUESTS.labels(method, route, f"{response.status_code // 100}xx").inc()
        HTTP_DURATION.labels(method, route).observe(elapsed)
        queries.record()
        return response


# --- Celery: task outcomes (in the worker) --------------------------------------------------------
_started: dict[str, float] = {}
_started_lock = threading.Lock()


def _task_name(sender: Any = None, task: Any = None, **_kw: Any) -> str:
    return str(getattr(task or sender, "name", None) or "unknown")


def _on_prerun(task_id: str | None = None, **kw: Any) -> None:
    if task_id:
        with _started_lock:
            _started[task_id] = time.perf_counter()


def _on_postrun(task_id: str | None = None, **kw: Any) -> None:
    with _started_lock:
        start = _started.pop(task_id or "", None)
    if start is not None:
        CELERY_TASK_DURATION.labels(_task_name(**kw)).observe(time.perf_counter() - start)


def _on_success(sender: Any = None, **_kw: Any) -> None:
    CELERY_TASKS.labels(_task_name(sender), "succeeded").inc()


def _on_failure(sender: Any = None, **_kw: Any) -> None:
    CELERY_TASKS.labels(_task_name(sender), "failed").inc()


def _on_retry(sender: Any = None, **_kw: Any) -> None:
    CELERY_TASKS.labels(_task_name(sender), "retried").inc()


def _on_child_shutdown(pid: int | None = None, **_kw: Any) -> None:
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid or os.getpid())


def _on_worker_ready(**_kw: Any) -> None:
    listen = getattr(settings, "METRICS_WORKER_LISTEN", "")
    if listen:
        try:
            start_worker_exporter(listen)
        except (OSError, ValueError) as exc:  # the port taken, a bad address: tasks still run
            log.error("metrics: cannot serve the worker's /metrics on %s: %s", listen, exc)


def connect_celery_signals() -> None:
    """Idempotent (dispatch_uid); called below, when the module is imported."""
    for signal, receiver in (
        (task_prerun, _on_prerun),
        (task_postrun, _on_postrun),
        (task_success, _on_success),
        (task_failure, _on_failure),
        (task_retry, _on_retry),
        (worker_process_shutdown, _on_child_shutdown),
        (worker_ready, _on_worker_ready),
    ):
        signal.connect(receiver, weak=False, dispatch_uid=f"bpu_metrics{receiver.__name__}")


connect_celery_signals()


# --- scrape time: the Celery queues in Redis ------------------------------------------------------
PRIORITY_SEP = "\x06\x16"  # kombu's Redis transport: "<queue>\x06\x16<priority>" lists
PRIORITY_STEPS = (0, 3, 6, 9)


def queue_names() -> list[str]:
    """The portal's queues: the default queue, CELERY_TASK_QUEUES and the queues named in
    CELERY_TASK_ROUTES (a dict of task name to {"queue": ...} or to a queue name)."""
    names = [str(settings.CELERY_TASK_DEFAULT_QUEUE)]
    for queue in getattr(settings, "CELERY_TASK_QUEUES", None) or ():
        names.append(str(getattr(queue, "name", queue)))
    routes = getattr(settings, "CELERY_TASK_ROUTES", None)
    if isinstance(routes, dict):
        for route in routes.values():
            name = route.get("queue") if isinstance(route, dict) else route
            if isinstance(name, str):
                names.append(name)
    return sorted(set(names))


class CeleryQueueCollector(Collector):
    """`bpu_celery_queue_length{queue}`: messages waiting in each queue (LLEN of the queue's
    lists, every priority), `bpu_celery_unacked`: messages handed to a worker and not yet
    acknowledged, and `bpu_celery_broker_up`. Read from the broker at each scrape, with the
    health checks' timeout; a broker that is not Redis reports nothing."""

    def collect(self) -> Iterable[Metric]:
        url = str(settings.CELERY_BROKER_URL)
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return []
        timeout = float(getattr(settings, "HEALTH_CHECK_TIMEOUT_SECONDS", 2))
        prefix = str((settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}).get("global_keyprefix", ""))
        queues = queue_names()
        up = GaugeMetricFamily("bpu_celery_broker_up", "1 when the broker answered this scrape.")
        length = GaugeMetricFamily(
            "bpu_celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        unacked = GaugeMetricFamily(
            "bpu_celery_unacked", "Messages handed to workers and not yet acknowledged."
        )
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            with client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    for step in PRIORITY_STEPS:
                        pipe.llen(
                            f"{prefix}{queue}{PRIORITY_SEP}{step}" if step else prefix + queue
                        )
                pipe.hlen(f"{prefix}unacked")
                values = pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics: the broker did not answer: %s", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        finally:
            client.close()
        steps = len(PRIORITY_STEPS)
        for i, queue in enumerate(queues):
            length.add_metric([queue], sum(values[i * steps : (i + 1) * steps]))
        unacked.add_metric([], values[-1])
        up.add_metric([], 1)
        return [up, length, unacked]


class _Forward(Collector):
    """Another registry's metrics, in a registry of its own (no duplicate-name check twice)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


def registry_for_scrape(*, queues: bool) -> CollectorRegistry:
    """This process's metrics, or every process's in multiprocess mode, plus (`queues`) the
    queue lengths read now."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    if queues:
        registry.register(CeleryQueueCollector())
    return registry


# --- the endpoint ---------------------------------------------------------------------------------
def authorized(header: str | None, token: str) -> bool:
    """`header` is "Bearer <token>" (the scheme in any case), compared in constant time."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    return hmac.compare_digest(given.strip().encode(), token.encode())


def _refused() -> HttpResponse:
    response = HttpResponse(status=401)
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_safe
def view(request: HttpRequest) -> HttpResponse:
    token = str(getattr(settings, "METRICS_TOKEN", "") or "")
    if not token:
        raise Http404
    if not authorized(request.headers.get("Authorization"), token):
        log.warning("metrics: a scrape without the right token was refused")
        return _refused()
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(registry_for_scrape(queues=True)), content_type=content_type)
    add_never_cache_headers(response)
    return response


# --- the worker's own endpoint --------------------------------------------------------------------
_exporter: list[WSGIServer] = []


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No line per scrape on stderr."""


def _worker_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    token = str(getattr(settings, "METRICS_TOKEN", "") or "")
    if not token or environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b""]
    if not authorized(environ.get("HTTP_AUTHORIZATION"), token):
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
        )
        return [b""]
    encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
    body = encoder(registry_for_scrape(queues=False))
    start_response("200 OK", [("Content-Type", content_type), ("Cache-Control", "no-store")])
    return [body]


def start_worker_exporter(listen: str) -> WSGIServer:
    """Serve `/metrics` of this Celery worker (every pool child, in multiprocess mode) on
    `listen` ("host:port") from a daemon thread of the worker's main process, with the token."""
    if _exporter:
        return _exporter[0]
    host, _, port = listen.rpartition(":")
    server = make_server(
        host.strip("[]") or "127.0.0.1",
        int(port),
        _worker_app,
        ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    _exporter.append(server)
    log.info("metrics: serving the worker's /metrics on %s", listen)
    return server
