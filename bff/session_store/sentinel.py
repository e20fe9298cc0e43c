"""Redis Sentinel: the master's client, with the standalone client's bounded, blocking pool.

redis-py's ``Sentinel.master_for`` asks the sentinels for the master's address whenever a
connection connects, and drops a connection to a master that was demoted (``READONLY``). Its
own pool, like redis-py's plain one, raises at its cap; :class:`BlockingSentinelPool` waits for a
free connection instead, as the standalone client's ``BlockingConnectionPool`` does.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool

# What REDIS_URL's host and port would say: in Sentinel mode the sentinels say it.
_ADDRESS = ("host", "port", "connection_class", "path")


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """Sentinel's pool (connections to the current master) with at most ``max_connections``,
    a caller past them waiting up to ``timeout`` seconds for one."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        """All connections, or (a new master was found) the idle ones only: they reconnect,
        to the new master, on next use. redis-py < 5.1's blocking pool takes no argument."""
        if inuse_connections:
            super().disconnect()
            return
        for connection in [c for c in list(self.pool.queue) if c is not None]:
            connection.disconnect()


def sentinel_master(
    sentinels: tuple[tuple[str, int], ...],
    master: str,
    url: str,
    sentinel_password: str | None,
    options: dict[str, Any],
) -> redis.Redis:
    """The client of ``master`` as ``sentinels`` name it, on ``url``'s database, user,
    password and TLS (``rediss://``: to the master and to the sentinels alike); ``options``
    (timeouts, retry, pool size and wait) are the standalone client's."""
    parsed: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    node = {k: v for k, v in parsed.items() if k not in _ADDRESS}
    tls = url.startswith("rediss://")
    # The sentinels' clients: the same timeouts and retry (redis-py's default retries 3 times).
    shared = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout", "retry")}
    manager = Sentinel(
        list(sentinels),
        sentinel_kwargs={**shared, "password": sentinel_password, "ssl": tls},
    )
    client: redis.Redis = manager.master_for(
        master, connection_pool_class=BlockingSentinelPool, ssl=tls, **node, **options
    )
    return client
