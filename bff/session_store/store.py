"""SessionStore: sessions, pending binds, handles and the per-openid lock, in Redis.

Every call fails closed (``503 BFF.SESSION_STORE_UNAVAILABLE``): no SUCCESS is ever answered for
a session that was not kept, and no caller is ever guessed. A flow's turn at one user's state is
a :class:`~bff.session_store.step.Step` (:meth:`SessionStore.begin`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bff.lazy import Lazy
from bff.models import Counter, PendingBind, WechatIdentity
from bff.session_store.base import (
    Keys,
    RedisClient,
    decode_handle,
    decode_pending,
    decode_session,
    encode,
    fail_closed,
)
from bff.session_store.step import Step


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
        self._keys = Keys(prefix)
        self._state_ttl_s = state_ttl_s
        self._handle_ttl_s = handle_ttl_s

    @property
    def _redis(self) -> RedisClient:
        return self._client.get()  # created on first use (bff.lazy)

    def begin(
        self,
        openid: str,
        counters: Sequence[Counter] = (),
        *,
        lease_s: float | None = None,
        reads: frozenset[str] = frozenset(),
    ) -> Step:
        """Count ``counters``, take the openid's lock (with ``lease_s``) and read ``reads``
        (``pending``, ``session``, ``handles``) in one round trip; use it as a context manager.
        """
        with fail_closed("begin"):
            client = self._redis  # a cluster client connects when it is first built
        step = Step(
            client, self._keys, openid, lease_s=lease_s, reads=reads, state_ttl_s=self._state_ttl_s
        )
        return step.open(counters)

    def count(self, counters: Sequence[Counter]) -> list[tuple[int, int]] | None:
        """Count ``counters`` alone (no lock, no read): one round trip."""
        if not counters:
            return []
        return self.begin("", counters).counts

    def load_pending(self, openid: str) -> PendingBind | None:
        with fail_closed("load_pending"):
            raw = self._redis.get(self._keys.pending(openid))
        return decode_pending(raw)

    # -- handles (wechat identity mode)

    def save_handle(self, handle_sha256: str, who: WechatIdentity) -> None:
        """Store the handle and list it in the openid's handle index, in one round trip.

        The index (``{prefix}:handles:{openid}``, a sorted set of handle digests scored by when
        each expires) is what lets logout end every handle of the user; expired entries are
        pruned here, so it stays as small as the user's live handles.
        """
        now = int(time.time())
        index = self._keys.handles(who.openid)
        with fail_closed("save_handle"):
            with self._redis.pipeline(transaction=False) as pipe:  # keys on several slots
                pipe.set(self._keys.handle(handle_sha256), encode(who), ex=self._handle_ttl_s)
                pipe.zadd(index, {handle_sha256: now + self._handle_ttl_s})
                pipe.zremrangebyscore(index, "-inf", now)
                pipe.expire(index, self._handle_ttl_s)
                pipe.execute()

    def load_handle(self, handle_sha256: str) -> WechatIdentity | None:
        with fail_closed("load_handle"):
            raw = self._redis.get(self._keys.handle(handle_sha256))
        return decode_handle(raw)

    def ttl(self, kind: str, ident: str) -> int:
        with fail_closed("ttl"):
            # redis-py 8 types ttl() as int, older ones as "ResponseT": fine with either.
            ttl: Any = self._redis.ttl(self._keys.key(kind, ident))
            return int(ttl)

    def close(self) -> None:
        """Close the client's connections (tests and shutdown)."""
        built = self._client.built
        if built is not None:
            built.close()

    def ping(self) -> None:
        """:raises SessionStoreUnavailable: when Redis does not answer."""
        with fail_closed("ping"):
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
        index = self._keys.handles(openid)
        with fail_closed("describe"):
            with self._redis.pipeline(transaction=False) as pipe:  # several keys, maybe slots
                for key in (self._keys.session(openid), self._keys.pending(openid)):
                    pipe.get(key)
                    pipe.ttl(key)
                pipe.ttl(self._keys.lock(openid))
                pipe.ttl(index)
                pipe.zcount(index, int(time.time()), "+inf")  # scored by when each expires
                session, session_ttl, pending, pending_ttl, lock_ttl, index_ttl, live = (
                    pipe.execute()
                )
        stored, parked = decode_session(session), decode_pending(pending)
        return {
            "session": {
                "exists": session is not None,
                "ttl_s": _ttl(session_ttl),
                "expire_at": stored.expire_at if stored else None,
                "unionid": stored.unionid if stored else None,
                "id_token_sub": stored.id_token_sub if stored else None,
            },
            "pending_bind": {
                "exists": pending is not None,
                "ttl_s": _ttl(pending_ttl),
                "status": parked.status if parked else None,
            },
            "lock": {"held": lock_ttl != -2, "ttl_s": _ttl(lock_ttl)},
            "handles": None if index_ttl == -2 else int(live),
        }


def _ttl(value: int) -> int | None:
    """A TTL as Redis answers it, None for a key that does not exist (-2)."""
    return None if value == -2 else int(value)
