"""The Services container: every client the flows use, built once per worker. No Flask."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bff.apps import DEFAULT_APP, AppSettings
from bff.clients.http import Upstream, breaker
from bff.clients.idaas import IdaasClient
from bff.clients.wechat import WeChatClient
from bff.id_token import IdTokenVerifier
from bff.lazy import Lazy
from bff.ratelimit import Limiter, route_limits
from bff.session_store import SessionStore
from bff.session_store.base import RedisClient
from bff.session_store.sentinel import sentinel_master
from bff.settings import (
    REDIS_MAX_CONNECTIONS,
    REDIS_RETRIES,
    REDIS_TIMEOUT_S,
    REDIS_WAIT_REPLICAS_MS,
    Settings,
)


@dataclass(frozen=True)
class Services:
    """One app's clients: what the flows use to serve a request of that app."""

    settings: Settings
    app: AppSettings
    store: SessionStore
    limiter: Limiter
    idaas: IdaasClient
    wechat: WeChatClient | None
    verifier: IdTokenVerifier
    openid_hash_key: bytes = field(default=b"", repr=False)  # of the openid hash in logs
    openid_hash_key_previous: bytes | None = field(default=None, repr=False)  # in a rotation
    close: Callable[[], None] = field(default=lambda: None, repr=False, compare=False)


@dataclass(frozen=True)
class Deployment:
    """Every app this process serves, and the connections they share (one Redis client, one
    pooled HTTP session per upstream URL)."""

    settings: Settings
    apps: dict[str, Services]
    closers: tuple[Callable[[], None], ...] = field(default=(), repr=False)
    by_appid: dict[str, Services] = field(init=False, repr=False)
    identity_sources: set[str] = field(init=False)  # the identity modes of the apps served

    def __post_init__(self) -> None:
        appids = {s.app.wechat_appid: s for s in self.apps.values() if s.app.wechat_appid}
        object.__setattr__(self, "by_appid", appids)
        object.__setattr__(
            self, "identity_sources", {s.app.identity_source for s in self.apps.values()}
        )

    @property
    def default(self) -> Services:
        return self.apps[DEFAULT_APP]

    def app(self, name: str) -> Services | None:
        return self.apps.get(name)

    def for_appid(self, appid: str) -> Services | None:
        """The app of a WeChat appid (every app's is its own)."""
        return self.by_appid.get(appid)

    def close(self) -> None:
        """Release sockets: the Redis pool and the upstream HTTP sessions."""
        for close in self.closers:
            close()


def redis_client(settings: Settings) -> redis.Redis | redis.RedisCluster:
    """A client with socket and connect timeouts, one immediate retry and a bounded pool.

    The pool (per cluster node) keeps at most REDIS_MAX_CONNECTIONS; a caller past them waits
    up to REDIS_TIMEOUT_S for a free one. Bounded, because Redis's maxclients is shared by every
    worker of every instance and a gevent worker serves up to 1000 requests; waiting, because
    redis-py's own pool raises at its cap (redis-py 8 set a default cap of 100: a worker with
    more requests at Redis at once answered 503 to the rest).

    With REDIS_SENTINELS, the master's client (:mod:`bff.session_store.sentinel`): the same
    timeouts, retry and pool, the master's address asked of the sentinels on every connect.

    A cluster client connects when it is created: call this lazily (SessionStore does).
    """
    options: dict[str, Any] = {
        "socket_timeout": REDIS_TIMEOUT_S,
        "socket_connect_timeout": REDIS_TIMEOUT_S,
        # A connection that failed (a pooled socket Redis closed, a master gone) is retried;
        # a slow answer is not: Redis may have run the commands, and sent again they would run
        # twice (a counter counted twice, a lock's SET NX meeting itself as taken).
        "retry": Retry(NoBackoff(), REDIS_RETRIES, supported_errors=(redis.ConnectionError,)),
        "decode_responses": True,
        "max_connections": REDIS_MAX_CONNECTIONS,
    }
    if settings.redis_cluster:
        pool_class = partial(redis.BlockingConnectionPool, timeout=REDIS_TIMEOUT_S)
        return redis.RedisCluster.from_url(
            settings.redis_url, connection_pool_class=pool_class, **options
        )
    if settings.redis_sentinels:
        return sentinel_master(
            settings.redis_sentinels,
            settings.redis_sentinel_master,
            settings.redis_url,
            settings.redis_sentinel_password,
            {**options, "timeout": REDIS_TIMEOUT_S, "health_check_interval": 30},
        )
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url, timeout=REDIS_TIMEOUT_S, health_check_interval=30, **options
    )
    return redis.Redis(connection_pool=pool)


def _upstream(
    settings: Settings, name: str, base_url: str, timeout: tuple[float, float]
) -> Upstream:
    """One upstream: its pooled session, timeouts and deadline, answer cap and breaker."""
    return Upstream(
        name,
        base_url,
        timeout,
        breaker(name, settings.circuit_failures, settings.circuit_reset_s),
        max_body_bytes=settings.upstream_max_body_bytes,
    )


def lock_lease_s(settings: Settings) -> float:
    """The per-openid lock's lease: longer than what one holder can do (the IDaaS call and a
    JWKS fetch, each under one deadline of connect + read, and a few Redis calls); a lease lost
    anyway is logged and counted (``bff_lock_leases_lost_total``)."""
    return 2 * (settings.idaas_connect_timeout_s + settings.idaas_read_timeout_s) + 15.0


def replica_wait(settings: Settings) -> tuple[int, int]:
    """What a commit of writes waits for: (replicas, ms); in Sentinel mode only."""
    replicas = settings.redis_sentinel_wait_replicas if settings.redis_sentinels else 0
    return (replicas, REDIS_WAIT_REPLICAS_MS if replicas else 0)


def build_deployment(settings: Settings) -> Deployment:
    """Every app's clients. Nothing here is shared across a fork: call it in each worker."""
    redis_built: Lazy[RedisClient] = Lazy(lambda: redis_client(settings))
    upstreams: dict[str, Upstream] = {}

    def upstream(name: str, base_url: str, timeout: tuple[float, float]) -> Upstream:
        key = f"{name} {base_url}"
        if key not in upstreams:  # two apps of one tenant share its pool and its breaker
            upstreams[key] = _upstream(settings, name, base_url, timeout)
        return upstreams[key]

    tenants: dict[str, str] = {}  # an IDaaS tenant -> the prefix of its first app
    for app in settings.apps:
        tenants.setdefault(_tenant(app), app.redis_key_prefix)
    apps = {
        app.name: _app_services(settings, app, redis_built.get, upstream, tenants[_tenant(app)])
        for app in settings.apps
    }

    def close_redis() -> None:
        if redis_built.built is not None:
            redis_built.built.close()
            pool = getattr(redis_built.built, "connection_pool", None)  # none in a cluster
            if pool is not None:  # redis-py 5.0.0's close() leaves the pool's sockets open
                pool.disconnect()

    closers = (close_redis, *(u.close for u in upstreams.values()))
    return Deployment(settings, apps, closers)


def build_services(settings: Settings) -> Services:
    """The default app's clients, for code that serves one app (bff-admin, tests); its
    ``close`` releases every connection of the deployment built for it."""
    deployment = build_deployment(settings)
    return dataclasses.replace(deployment.default, close=deployment.close)


def _tenant(app: AppSettings) -> str:
    """The IDaaS tenant an app signs in at (two apps may share one)."""
    return app.idaas_base_url.rstrip("/")


def _app_services(
    settings: Settings,
    app: AppSettings,
    redis_factory: Callable[[], RedisClient],
    upstream: Callable[[str, str, tuple[float, float]], Upstream],
    tenant_prefix: str,
) -> Services:
    idaas_http = upstream("idaas", app.idaas_base_url, settings.idaas_timeout)
    idaas = IdaasClient(idaas_http, app.idaas_client_id, app.idaas_session_token_header)
    wechat = None
    if app.identity_source == "wechat":
        assert app.wechat_appid and app.wechat_secret  # checked by load_settings  # noqa: S101
        wechat_http = upstream("wechat", app.wechat_api_base, settings.wechat_timeout)
        wechat = WeChatClient(wechat_http, app.wechat_appid, app.wechat_secret)
    store = SessionStore(
        redis_factory,
        app.redis_key_prefix,
        state_ttl_s=settings.state_token_ttl_s,
        handle_ttl_s=settings.handle_ttl_s,
        lock_lease_s=lock_lease_s(settings),
        audit_maxlen=settings.audit_stream_maxlen,
        replica_wait=replica_wait(settings),
        tenant_prefix=tenant_prefix,
    )
    verifier = IdTokenVerifier(
        idaas.jwks,
        issuer=app.idaas_base_url.rstrip("/") + "/api/v1/oauth2",
        audience=app.idaas_client_id,
        enabled=app.idaas_verify_id_token,
    )
    limiter = Limiter(store, route_limits(app))
    return Services(
        settings,
        app,
        store,
        limiter,
        idaas,
        wechat,
        verifier,
        settings.openid_hash_key,
        settings.openid_hash_key_previous,
    )
