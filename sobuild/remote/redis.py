"""A remote tier on a Redis server (``redis://host:port/db``), through redis-py.

Kernel records and artifacts are plain string values; a lookup of many kernels is one MGET
for the records and one for the artifacts. A server with ``maxmemory`` and an evicting
policy (``allkeys-lru``) is a bounded cache: an evicted artifact is a miss.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .backend import RemoteUnavailable, Timeouts


class RedisBackend:
    """Get and put entries on one Redis database; errors become RemoteUnavailable."""

    def __init__(self, url: str):
        self._url = url
        self._clients: dict[tuple[float, float], redis.Redis] = {}

    def _client(self, timeouts: Timeouts) -> redis.Redis:
        # one client per pair of timeouts: they shrink only after failures, with the budget
        bounds = (round(timeouts.connect, 3), round(timeouts.operation, 3))
        client = self._clients.get(bounds)
        if client is None:
            client = redis.Redis.from_url(
                self._url, socket_connect_timeout=bounds[0], socket_timeout=bounds[1],
                retry=Retry(NoBackoff(), 0), retry_on_timeout=False, health_check_interval=0)
            self._clients[bounds] = client
        return client

    def _do(self, timeouts: Timeouts, operation):
        try:
            return operation(self._client(timeouts))
        except redis.RedisError as exc:
            raise RemoteUnavailable(f"{type(exc).__name__}: {exc}") from None

    def get_many(self, names: list[str], timeouts: Timeouts) -> list[bytes | None]:
        if not names:
            return []
        return self._do(timeouts, lambda client: client.mget(names))

    def put_many(self, items: dict[str, bytes], timeouts: Timeouts) -> None:
        if items:
            self._do(timeouts, lambda client: client.mset(items))

    def exists(self, name: str, timeouts: Timeouts) -> bool:
        return bool(self._do(timeouts, lambda client: client.exists(name)))

    def delete(self, name: str, timeouts: Timeouts) -> None:
        self._do(timeouts, lambda client: client.delete(name))
