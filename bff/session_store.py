"""The only code that knows Redis keys and TTLs (SPEC §5).

Every call here is fail-closed: a Redis error becomes :class:`SessionStoreUnavailable` (503),
so no SUCCESS is ever answered for a session that was not kept.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import redis
from redis.exceptions import LockError, RedisClusterException

from bff.errors import RequestInProgress, SessionStoreUnavailable
from bff.lazy import Lazy
from bff.models import CachedSession, PendingBind, WechatIdentity
from bff.observability import LOCK_LEASES_LOST, SESSION_STORE_ERRORS

log = logging.getLogger("bff.store")

RedisClient = redis.Redis | redis.RedisCluster
# What a Redis or Redis Cluster call can raise when the server is gone.
STORE_ERRORS = (redis.RedisError, RedisClusterException)


@contextmanager
def _fail_closed(operation: str) -> Iterator[None]:
    try:
        yield
    except STORE_ERRORS as exc:
        # Fail CLOSED (SPEC §5): the caller answers 503, never a SUCCESS we did not keep.
        SESSION_STORE_ERRORS.inc()
        log.warning(
            "session store unavailable",
            extra={"operation": operation, "error_type": type(exc).__name__},
        )
        raise SessionStoreUnavailable() from exc


def _decode(raw: Any, what: str) -> dict[str, Any] | None:
    """A stored JSON object, or None when absent or corrupt (corrupt is logged, then ignored)."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        log.warning("corrupt value in session store", extra={"kind": what})
        return None
    return value


class SessionStore:
    """Sessions, pending binds and handles, keyed by openid (or a handle's SHA-256)."""

    def __init__(
        self,
        client: RedisClient | Callable[[], RedisClient],
        prefix: str,
        *,
        state_ttl_s: int,
        handle_ttl_s: int,
    ) -> None:
        self._client: Lazy[RedisClient] = Lazy(
            (lambda: client) if isinstance(client, RedisClient) else client
        )
        self._prefix = prefix
        self._state_ttl_s = state_ttl_s
        self._handle_ttl_s = handle_ttl_s

    @property
    def _redis(self) -> RedisClient:
        return self._client.get()  # created on first use (bff.lazy)

    def _key(self, kind: str, ident: str) -> str:
        """The one place a key is spelled: ``{prefix}:{kind}:{ident}``."""
        return f"{self._prefix}:{kind}:{ident}"

    # -- handles (wechat identity mode)

    def save_handle(self, handle_sha256: str, who: WechatIdentity) -> None:
        """Store the handle and list it in the openid's handle index, in one round trip.

        The index (``{prefix}:handles:{openid}``, a sorted set of handle digests scored by when
        each expires) is what lets logout end every handle of the user; expired entries are
        pruned here, so it stays as small as the user's live handles.
        """
        now = int(time.time())
        index = self._key("handles", who.openid)
        with _fail_closed("save_handle"):
            with self._redis.pipeline(transaction=False) as pipe:  # keys on several slots
                pipe.set(
                    self._key("handle", handle_sha256),
                    json.dumps(asdict(who)),
                    ex=self._handle_ttl_s,
                )
                pipe.zadd(index, {handle_sha256: now + self._handle_ttl_s})
                pipe.zremrangebyscore(index, "-inf", now)
                pipe.expire(index, self._handle_ttl_s)
                pipe.execute()

    def load_handle(self, handle_sha256: str) -> WechatIdentity | None:
        with _fail_closed("load_handle"):
            raw = self._redis.get(self._key("handle", handle_sha256))
        value = _decode(raw, "handle")
        if value is None or not isinstance(value.get("openid"), str):
            return None
        unionid = value.get("unionid")
        return WechatIdentity(value["openid"], unionid if isinstance(unionid, str) else None)

    # -- sessions

    def save_session(self, openid: str, session: CachedSession, ttl_s: int) -> str | None:
        """Cache the session and drop the pending bind, in one round trip.

        :returns: the ``id_token_sub`` of the session it replaced (``SET ... GET``), if any.
        """
        with _fail_closed("save_session"):
            with self._redis.pipeline(transaction=False) as pipe:  # two keys, maybe two slots
                key = self._key("session", openid)
                pipe.set(key, json.dumps(asdict(session)), ex=ttl_s, get=True)
                pipe.delete(self._key("pending", openid))
                previous = _decode(pipe.execute()[0], "session")
        sub = previous.get("id_token_sub") if previous else None
        return sub if isinstance(sub, str) else None

    def load_session(self, openid: str) -> CachedSession | None:
        with _fail_closed("load_session"):
            raw = self._redis.get(self._key("session", openid))
        value = _decode(raw, "session")
        if value is None:
            return None
        token, expire_at = value.get("session_token"), value.get("expire_at")
        unionid, sub = value.get("unionid"), value.get("id_token_sub")
        if (
            not isinstance(token, str)
            or not isinstance(expire_at, int)
            or not isinstance(unionid, str | None)
            or not isinstance(sub, str | None)
        ):
            log.warning("corrupt value in session store", extra={"kind": "session"})
            return None
        return CachedSession(token, expire_at, unionid, sub)

    def replace_session(self, openid: str, session: CachedSession, ttl_s: int) -> None:
        """A rotated session token replaces the cached one (refresh)."""
        with _fail_closed("replace_session"):
            self._redis.set(self._key("session", openid), json.dumps(asdict(session)), ex=ttl_s)

    def delete_session(self, openid: str) -> None:
        with _fail_closed("delete_session"):
            self._redis.delete(self._key("session", openid))

    # -- pending binds

    def save_pending(self, openid: str, pending: PendingBind) -> None:
        with _fail_closed("save_pending"):
            self._redis.set(
                self._key("pending", openid), json.dumps(asdict(pending)), ex=self._state_ttl_s
            )

    def load_pending(self, openid: str) -> PendingBind | None:
        with _fail_closed("load_pending"):
            raw = self._redis.get(self._key("pending", openid))
        value = _decode(raw, "pending")
        if value is None or not isinstance(value.get("state_token"), str):
            return None
        return PendingBind(value["state_token"], str(value.get("status") or ""))

    def delete_pending(self, openid: str, state_token: str | None = None) -> None:
        """Drop the pending bind; with ``state_token``, only if it is still that one (a newer
        login may have parked a fresh one meanwhile)."""
        key = self._key("pending", openid)
        with _fail_closed("delete_pending"):
            if state_token is None:
                self._redis.delete(key)
                return
            current = _decode(self._redis.get(key), "pending")
            if current is not None and current.get("state_token") == state_token:
                self._redis.delete(key)  # we hold the openid lock: no write slips in between

    # -- logout

    def forget(self, openid: str, handle_sha256: str | None = None) -> None:
        """Delete the session, the pending bind and every handle of the openid (logout).

        Two round trips: read the handle index, then delete everything it names with the
        session, the pending bind and the index itself. Fails closed: a 503 means the caller
        must log out again, never a 204 with a handle left working.
        """
        index = self._key("handles", openid)
        with _fail_closed("forget"):
            digests = set(self._redis.zrange(index, 0, -1))  # type: ignore[arg-type]
            if handle_sha256:
                digests.add(handle_sha256)  # a handle issued before the index existed
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(self._key("session", openid))
                pipe.delete(self._key("pending", openid))
                pipe.delete(index)
                for digest in sorted(digests):  # one DEL each: they sit on different slots
                    pipe.delete(self._key("handle", digest))
                pipe.execute()

    def ttl(self, kind: str, ident: str) -> int:
        with _fail_closed("ttl"):
            ttl: int = self._redis.ttl(self._key(kind, ident))  # type: ignore[assignment]
            return ttl

    # -- the per-openid lock: one login or bind at a time spends a single-use credential

    @contextmanager
    def openid_lock(self, openid: str, lease_s: float, wait_s: float) -> Iterator[None]:
        """Hold ``{prefix}:lock:{openid}`` for the body.

        :param wait_s: how long to wait for another holder; 0: not at all.
        :raises RequestInProgress: (with ``Retry-After``) when another request holds it.
        """
        with _fail_closed("lock"):
            lock = self._redis.lock(
                self._key("lock", openid),
                timeout=lease_s,
                sleep=0.05,
                blocking_timeout=wait_s,
                thread_local=False,
            )
            acquired = lock.acquire(blocking=wait_s > 0)
        if not acquired:
            raise RequestInProgress(headers={"Retry-After": "1"})
        try:
            yield
        finally:
            try:
                lock.release()
            except LockError:
                # The lease ran out while we worked: another request may have run alongside.
                LOCK_LEASES_LOST.inc()
                log.warning("openid lock lease lost before release")
            except STORE_ERRORS:
                pass  # Redis went away: the lease runs out by itself

    def close(self) -> None:
        """Close the client's connections (tests and shutdown)."""
        built = self._client.built
        if built is not None:
            built.close()

    def ping(self) -> None:
        """:raises SessionStoreUnavailable: when Redis does not answer."""
        with _fail_closed("ping"):
            self._redis.ping()

    # ------------------------------------------------------------------------------------------
    # Read-only views for operators (bff-admin): TTLs and non-secret fields, never a token, a
    # state token, a handle or a handle's digest.

    def describe(self, openid: str) -> dict[str, Any]:
        """What is kept for ``openid``: the session (``expire_at``, ``unionid``,
        ``id_token_sub``), the pending bind (``status``), whether the openid lock is held, each
        with its key's TTL in seconds (None: no such key; -1: no expiry), and ``handles``: how
        many live handles the per-openid index ``{prefix}:handles:{openid}`` lists (None when
        there is no index for this openid).
        """
        index = self._key("handles", openid)
        with _fail_closed("describe"):
            with self._redis.pipeline(transaction=False) as pipe:  # several keys, maybe slots
                for kind in ("session", "pending"):
                    pipe.get(self._key(kind, openid))
                    pipe.ttl(self._key(kind, openid))
                pipe.ttl(self._key("lock", openid))
                pipe.ttl(index)
                pipe.zcount(index, int(time.time()), "+inf")  # scored by when each expires
                session, session_ttl, pending, pending_ttl, lock_ttl, index_ttl, live = (
                    pipe.execute()
                )
            handles = None if index_ttl == -2 else int(live)
        stored = _decode(session, "session") or {}
        parked = _decode(pending, "pending") or {}
        return {
            "session": {
                "exists": session is not None,
                "ttl_s": _ttl(session_ttl),
                "expire_at": stored.get("expire_at"),
                "unionid": stored.get("unionid"),
                "id_token_sub": stored.get("id_token_sub"),
            },
            "pending_bind": {
                "exists": pending is not None,
                "ttl_s": _ttl(pending_ttl),
                "status": parked.get("status"),
            },
            "lock": {"held": lock_ttl != -2, "ttl_s": _ttl(lock_ttl)},
            "handles": handles,
        }


def _ttl(value: int) -> int | None:
    """A TTL as Redis answers it, None for a key that does not exist (-2)."""
    return None if value == -2 else int(value)
