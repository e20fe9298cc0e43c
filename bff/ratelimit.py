"""Abuse limits per openid, per client IP and per code destination, counted in Redis (SPEC §6, §12).

The ``limits`` library does the counting (fixed windows, atomic in Redis, shared by every worker
and instance). Login and bind limits fail OPEN when Redis is down; code sending fails CLOSED.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from redis import RedisError
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from bff.errors import RateLimited, SessionStoreUnavailable
from bff.lazy import Lazy
from bff.observability import RATE_LIMITER_FAIL_OPEN, SESSION_STORE_ERRORS
from bff.settings import REDIS_RETRIES, REDIS_TIMEOUT_S, RateLimits, Settings

log = logging.getLogger("bff.ratelimit")
_MOBILE = re.compile(r"^\+([0-9]{1,4})-([0-9]+)$")  # ASCII digits only


def limits_storage(settings: Settings) -> Storage:
    """A ``limits`` Redis storage on the same Redis as the sessions, with the same timeouts and
    retry as the session store (``REDIS_TIMEOUT_S``)."""
    uri = settings.redis_url
    options: dict[str, Any] = {
        "socket_timeout": REDIS_TIMEOUT_S,
        "socket_connect_timeout": REDIS_TIMEOUT_S,
        "retry": Retry(NoBackoff(), REDIS_RETRIES),
    }
    if settings.redis_cluster:
        scheme, rest = uri.split("://", 1)
        uri = "redis+cluster://" + rest
        if scheme == "rediss":
            options["ssl"] = True  # the cluster scheme has no TLS variant: keep TLS explicitly
    elif uri.startswith("unix://"):
        uri = "redis+unix://" + uri[len("unix://") :]
    storage = storage_from_string(
        uri, key_prefix=f"{settings.redis_key_prefix}:rl", wrap_exceptions=True, **options
    )
    assert isinstance(storage, Storage)  # noqa: S101 (a sync scheme gives a sync storage)
    return storage


def normalise(identifier: str) -> str:
    """One spelling per phone, e-mail or user name, so nobody gets several budgets by typing
    one differently: ``+086-0138...`` is ``+86-138...``; case, width and outer spaces fold."""
    text = unicodedata.normalize("NFKC", identifier).strip()
    mobile = _MOBILE.match(text)
    if mobile:
        country, national = mobile.groups()
        return f"+{int(country)}-{national.lstrip('0')}"
    return text.casefold()


def destination_key(to: str) -> str:
    """Phone numbers and emails are counted by hash: no contact data in Redis keys."""
    return hashlib.sha256(_bytes(normalise(to))).hexdigest()[:32]


def account_key(secret: bytes, identifier: str) -> str:
    """The IDaaS account a bind names (user name, mobile or e-mail), as a keyed hash: counters
    hold no account names, and nobody without the key can tell whose counter is whose."""
    message = b"account\0" + _bytes(normalise(identifier))
    return hmac.new(secret, message, "sha256").hexdigest()[:32]


def _bytes(text: str) -> bytes:
    """UTF-8, lone surrogates included: a name is forwarded as typed, so it is counted as typed."""
    return text.encode("utf-8", "surrogatepass")


class Limiter:
    def __init__(self, storage: Callable[[], Storage]) -> None:
        # Created on first use: a cluster storage connects when it is created (bff.lazy).
        self._strategy = Lazy(lambda: FixedWindowRateLimiter(storage()))

    @property
    def _limiter(self) -> FixedWindowRateLimiter:
        return self._strategy.get()

    def check(
        self, route: str, scopes: Iterable[tuple[str, str]], limits: RateLimits, *, fail_open: bool
    ) -> None:
        """Count one hit on every ``(scope, ident)`` pair that has limits for it.

        :raises RateLimited: with ``Retry-After`` when one is over its limit.
        :raises SessionStoreUnavailable: when Redis is down and ``fail_open`` is false.
        """
        try:
            for scope, ident in scopes:
                for item in limits.get(scope, ()):
                    self._hit(item, route, scope, ident)
        except (StorageError, RedisError, RedisClusterException) as exc:
            if not fail_open:
                SESSION_STORE_ERRORS.inc()
                # Fail CLOSED: no counter, no code sent (SMS pumping costs money).
                log.warning("rate limiter unavailable; refusing", extra={"route": route})
                raise SessionStoreUnavailable() from exc
            # Fail OPEN: a login must not depend on the limiter (SPEC §6).
            RATE_LIMITER_FAIL_OPEN.inc()
            log.warning(
                "rate limiter unavailable; letting the request through", extra={"route": route}
            )

    def _hit(self, item: RateLimitItem, route: str, scope: str, ident: str) -> None:
        if self._limiter.hit(item, route, scope, ident):
            return
        reset_at, _ = self._limiter.get_window_stats(item, route, scope, ident)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        log.info("rate limited", extra={"route": route, "scope": scope, "limit": str(item)})
        raise RateLimited(headers={"Retry-After": str(retry_after)})
