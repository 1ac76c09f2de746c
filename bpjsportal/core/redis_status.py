"""Is Redis (broker and cache) answering? A per-process circuit breaker, so that a Redis outage
costs one short timeout every few seconds instead of one per request.

- `available(url)` answers from the last result while it is fresh (settings.REDIS_HEALTH_TTL
  seconds), otherwise pings with a short timeout (settings.REDIS_HEALTH_TIMEOUT).
- `mark_down(url, reason)` is called by code that just saw Redis fail (the cache, the outbox
  relay): the next callers skip Redis until the breaker window has passed, then one probe
  decides again.

Nothing here is stored in Redis or the database: the state is this process's own.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

log = logging.getLogger(__name__)

# Errors that mean "Redis is not there / not answering", not "our command was wrong".
REDIS_DOWN_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    OSError,
)


@dataclass
class _State:
    up: bool
    checked_at: float


_lock = threading.Lock()
_states: dict[str, _State] = {}


def _ttl() -> float:
    return float(getattr(settings, "REDIS_HEALTH_TTL", 5.0))


def _timeout() -> float:
    return float(getattr(settings, "REDIS_HEALTH_TIMEOUT", 0.5))


def broker_url() -> str:
    return str(getattr(settings, "CELERY_BROKER_URL", "") or settings.REDIS_URL)


def cache_url() -> str:
    location = settings.CACHES["default"].get("LOCATION", "")
    first = location[0] if isinstance(location, list | tuple) else str(location).split(",")[0]
    return str(first)


def _fresh(url: str) -> _State | None:
    with _lock:
        state = _states.get(url)
    if state is not None and time.monotonic() - state.checked_at < _ttl():
        return state
    return None


def is_down(url: str) -> bool:
    """True while a recent probe or caller saw `url` fail (no network call)."""
    state = _fresh(url)
    return state is not None and not state.up


def mark_down(url: str, reason: object = "") -> None:
    with _lock:
        was_up = _states.get(url, _State(True, 0.0)).up
        _states[url] = _State(False, time.monotonic())
    if was_up:
        log.warning(
            "Redis at %s unavailable (%s): degrading for %.0f s", _safe(url), reason, _ttl()
        )


def mark_up(url: str) -> None:
    with _lock:
        was_down = not _states.get(url, _State(True, 0.0)).up
        _states[url] = _State(True, time.monotonic())
    if was_down:
        log.warning("Redis at %s answers again", _safe(url))


def probe(url: str) -> bool:
    """Ping now (short timeouts) and remember the answer."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=_timeout(), socket_timeout=_timeout(), retry_on_timeout=False
    )
    try:
        client.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        mark_down(url, exc)
        return False
    finally:
        client.close()
    mark_up(url)
    return True


def available(url: str) -> bool:
    state = _fresh(url)
    if state is not None:
        return state.up
    return probe(url)


def queue_available() -> bool:
    """The Celery broker answers (the banner in templates/base.html says when it does not)."""
    return available(broker_url())


def reset() -> None:
    """Forget every remembered state (tests that start and stop Redis)."""
    with _lock:
        _states.clear()


def _safe(url: str) -> str:
    """The URL without a password, for logs."""
    if "@" in url:
        scheme, _sep, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return url
