"""The Services container: every client the flows use, built once per worker. No Flask."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bff.clients.http import Upstream, breaker
from bff.clients.idaas import IdaasClient
from bff.clients.wechat import WeChatClient
from bff.id_token import IdTokenVerifier
from bff.ratelimit import Limiter, route_limits
from bff.session_store import SessionStore
from bff.settings import REDIS_MAX_CONNECTIONS, REDIS_RETRIES, REDIS_TIMEOUT_S, Settings


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: SessionStore
    limiter: Limiter
    idaas: IdaasClient
    wechat: WeChatClient | None
    verifier: IdTokenVerifier
    upstreams: tuple[Upstream, ...] = ()
    openid_hash_key: bytes = field(default=b"", repr=False)  # of the openid hash in logs

    def close(self) -> None:
        """Release sockets: the Redis pool and the upstream HTTP sessions."""
        self.store.close()
        for upstream in self.upstreams:
            upstream.close()


def redis_client(settings: Settings) -> redis.Redis | redis.RedisCluster:
    """A client with socket and connect timeouts, one immediate retry and a bounded pool.

    The pool (per cluster node) keeps at most REDIS_MAX_CONNECTIONS; a caller past them waits
    up to REDIS_TIMEOUT_S for a free one. Bounded, because Redis's maxclients is shared by every
    worker of every instance and a gevent worker serves up to 1000 requests; waiting, because
    redis-py's own pool raises at its cap (redis-py 8 set a default cap of 100: a worker with
    more requests at Redis at once answered 503 to the rest).

    A cluster client connects when it is created: call this lazily (SessionStore does).
    """
    options: dict[str, Any] = {
        "socket_timeout": REDIS_TIMEOUT_S,
        "socket_connect_timeout": REDIS_TIMEOUT_S,
        "retry": Retry(NoBackoff(), REDIS_RETRIES),
        "decode_responses": True,
        "max_connections": REDIS_MAX_CONNECTIONS,
    }
    if settings.redis_cluster:
        pool_class = partial(redis.BlockingConnectionPool, timeout=REDIS_TIMEOUT_S)
        return redis.RedisCluster.from_url(
            settings.redis_url, connection_pool_class=pool_class, **options
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


def build_services(settings: Settings) -> Services:
    """Build every client. Nothing here is shared across a fork: call it in each worker."""
    idaas_http = _upstream(settings, "idaas", settings.idaas_base_url, settings.idaas_timeout)
    idaas = IdaasClient(idaas_http, settings.idaas_client_id, settings.idaas_session_token_header)
    wechat = None
    if settings.identity_source == "wechat":
        assert settings.wechat_appid and settings.wechat_secret  # checked by load_settings  # noqa: S101
        wechat_http = _upstream(
            settings, "wechat", settings.wechat_api_base, settings.wechat_timeout
        )
        wechat = WeChatClient(wechat_http, settings.wechat_appid, settings.wechat_secret)
    store = SessionStore(
        lambda: redis_client(settings),
        settings.redis_key_prefix,
        state_ttl_s=settings.state_token_ttl_s,
        handle_ttl_s=settings.handle_ttl_s,
        lock_lease_s=lock_lease_s(settings),
    )
    verifier = IdTokenVerifier(
        idaas.jwks,
        issuer=settings.idaas_base_url.rstrip("/") + "/api/v1/oauth2",
        audience=settings.idaas_client_id,
        enabled=settings.idaas_verify_id_token,
    )
    upstreams = (idaas_http,) if wechat is None else (idaas_http, wechat_http)
    limiter = Limiter(store, route_limits(settings))
    return Services(
        settings, store, limiter, idaas, wechat, verifier, upstreams, settings.openid_hash_key
    )
