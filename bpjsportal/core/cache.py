"""The Django cache on Redis, degrading instead of failing: when Redis does not answer, a read
is a miss, a write is dropped, and a warning is logged once; `redis_status` then keeps calls
away from Redis for a few seconds (a circuit breaker) so no request waits on it repeatedly.

Nothing in the portal keeps data only in the cache (sessions are in PostgreSQL; the API
throttle counts in it and fails open, see enrollment/api/auth.py), so a miss is always safe.
Configured in settings.CACHES with short socket timeouts in OPTIONS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from . import redis_status

T = TypeVar("T")


class ResilientRedisCacheClient(RedisCacheClient):
    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._url = servers[0]

    def _guard(self, fallback: T, call: Callable[[], T]) -> T:
        url = self._url
        if redis_status.is_down(url):
            return fallback
        try:
            return call()
        except redis_status.REDIS_DOWN_ERRORS as exc:
            redis_status.mark_down(url, f"cache: {exc!r}")
            return fallback

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        return self._guard(
            False, lambda: super(ResilientRedisCacheClient, self).add(key, value, timeout)
        )

    def get(self, key: Any, default: Any) -> Any:
        return self._guard(
            default, lambda: super(ResilientRedisCacheClient, self).get(key, default)
        )

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        self._guard(None, lambda: super(ResilientRedisCacheClient, self).set(key, value, timeout))

    def touch(self, key: Any, timeout: Any) -> bool:
        return self._guard(
            False, lambda: super(ResilientRedisCacheClient, self).touch(key, timeout)
        )

    def delete(self, key: Any) -> bool:
        return self._guard(False, lambda: super(ResilientRedisCacheClient, self).delete(key))

    def get_many(self, keys: Any) -> dict[Any, Any]:
        return self._guard({}, lambda: super(ResilientRedisCacheClient, self).get_many(keys))

    def has_key(self, key: Any) -> bool:
        return self._guard(False, lambda: super(ResilientRedisCacheClient, self).has_key(key))

    def incr(self, key: Any, delta: int) -> int:
        missing: Any = _Missing
        result = self._guard(
            missing, lambda: super(ResilientRedisCacheClient, self).incr(key, delta)
        )
        if result is _Missing:  # Django's contract for a key that is not there
            raise ValueError(f"Key '{key}' not found (cache unavailable)")
        return int(result)

    def set_many(self, data: Any, timeout: Any) -> None:
        self._guard(None, lambda: super(ResilientRedisCacheClient, self).set_many(data, timeout))

    def delete_many(self, keys: Any) -> None:
        self._guard(None, lambda: super(ResilientRedisCacheClient, self).delete_many(keys))

    def clear(self) -> bool:
        return self._guard(False, lambda: super(ResilientRedisCacheClient, self).clear())


class _Missing:
    pass


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ResilientRedisCacheClient
        self._url = re.split("[;,]", server)[0] if isinstance(server, str) else server[0]

    @property
    def degraded(self) -> bool:
        return redis_status.is_down(self._url)
