"""SessionStore: sessions, pending binds, handles, rate-limit counters and the per-openid lock.

Every call fails closed (``503 BFF.SESSION_STORE_UNAVAILABLE``): no SUCCESS is ever answered for
a session that was not kept, and no caller is ever guessed. What a request does with one user's
keys under their lock goes through :meth:`SessionStore.lock` (:mod:`bff.session_store.lock`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bff.audit import AuditStream, queue_entries, take_queued
from bff.lazy import Lazy
from bff.limits import Hits
from bff.models import CachedSession, PendingBind
from bff.session_store.base import (
    Keys,
    RedisClient,
    decode_pending,
    decode_session,
    fail_closed,
    ok,
)
from bff.session_store.counting import Pipe, Windows
from bff.session_store.handles import HandleStore
from bff.session_store.lock import UserLock
from bff.session_store.user import Readable


class SessionStore:
    """Sessions, pending binds and handles, keyed by openid (or a handle's SHA-256)."""

    def __init__(
        self,
        client: RedisClient | Callable[[], RedisClient],
        prefix: str,
        *,
        state_ttl_s: int,
        handle_ttl_s: int,
        lock_lease_s: float,
        audit_maxlen: int = 0,
        replica_wait: tuple[int, int] = (0, 0),
        tenant_prefix: str | None = None,
    ) -> None:
        self._client: Lazy[RedisClient] = Lazy(
            (lambda: client) if isinstance(client, RedisClient) else client
        )
        self._keys = Keys(prefix, tenant_prefix)  # tenant_prefix: the counters apps share
        self._windows = Windows(self._keys)
        self._state_ttl_s = state_ttl_s
        self._handle_ttl_s = handle_ttl_s
        self._lock_lease_s = lock_lease_s
        # The app's audit stream (bff/audit.py), or None: records are logged only.
        self.audit_stream = AuditStream(self._keys.audit(), audit_maxlen) if audit_maxlen else None
        self._replica_wait = replica_wait  # (replicas, ms): a commit's WAIT; 0 replicas: none
        self.handles = HandleStore(lambda: self._redis, self._keys, handle_ttl_s, replica_wait)

    @property
    def _redis(self) -> RedisClient:
        with fail_closed("connect"):
            return self._client.get()  # created on first use: a cluster client connects then

    def lock(
        self,
        openid: str,
        hits: Hits | None,
        *,
        wait_s: float,
        read: Sequence[Readable] = (),
    ) -> UserLock:
        """The openid's lock, with ``hits`` counted and ``read`` read in the same round trip;
        use it as a context manager (:mod:`bff.session_store.lock`). ``wait_s``: how long to
        wait for it when another request of this user holds it."""
        return UserLock(
            self._redis,
            self._keys,
            self._windows,
            openid,
            hits=hits,
            lease_s=self._lock_lease_s,
            wait_s=wait_s,
            read=read,
            state_ttl_s=self._state_ttl_s,
            handle_ttl_s=self._handle_ttl_s,
            replica_wait=self._replica_wait,
        )

    def count(self, hits: Hits) -> None:
        """Count ``hits`` alone (no lock, no read) and judge them: one round trip."""
        self._counted(hits, lambda pipe: None)

    def session(self, openid: str, hits: Hits) -> CachedSession | None:
        """Count ``hits`` and read ``openid``'s session, without the lock: one round trip."""
        raw = self._counted(hits, lambda pipe: pipe.get(self._keys.session(openid)))
        return decode_session(ok(raw[0], "session"))

    def _counted(self, hits: Hits, queue: Callable[[Pipe], object]) -> list[Any]:
        """Count ``hits``, and what ``queue`` adds, in one round trip; judge the counts.

        One round trip more only when a counter this worker had seen was gone (its expiry,
        given back). Redis unreachable fails closed, as the lock's round trip does; Redis
        refusing to count (an ACL) leaves it to the limiter's policy. :returns: the answers of
        what ``queue`` added.
        """
        with fail_closed("count"):
            with self._redis.pipeline(transaction=False) as pipe:
                queued = self._windows.queue(pipe, hits.counters)
                queue(pipe)
                results = pipe.execute(raise_on_error=False)
            counts = self._windows.counts(queued, results[: queued.commands])
            repairs = self._windows.repairs(queued, counts) if counts else []
            if repairs:
                with self._redis.pipeline(transaction=False) as pipe:
                    for key, ends_at in repairs:
                        pipe.execute_command("EXPIREAT", key, ends_at)
                    pipe.execute()
        hits.judge(counts)
        return results[queued.commands :]

    def load_pending(self, openid: str) -> PendingBind | None:
        with fail_closed("load_pending"):
            raw = self._redis.get(self._keys.pending(openid))
        return decode_pending(raw)

    def openids_of(self, subject: str) -> list[str]:
        """The openids with a live session of IDaaS user ``subject`` (the subject index)."""
        with fail_closed("subject"):
            found: Any = self._redis.zrangebyscore(
                self._keys.subject(subject), int(time.time()), "+inf"
            )
        return [item.decode() if isinstance(item, bytes) else str(item) for item in found]

    def flush_audit(self) -> None:
        """The request's audit entries no pipeline carried yet, in one (fails closed: the
        records are in the log already, and the caller decides what a failure means)."""
        entries = take_queued()
        if entries:
            with fail_closed("audit"), self._redis.pipeline(transaction=False) as pipe:
                queue_entries(pipe, entries)
                pipe.execute()

    def audit_tail(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """The app's last ``count`` audit entries, the oldest first: ``(id, fields)``."""
        with fail_closed("audit"):
            found: Any = self._redis.xrevrange(self._keys.audit(), count=count)
        return [(_text(i), {_text(k): _text(v) for k, v in f.items()}) for i, f in reversed(found)]

    def claim_event_nonce(self, nonce: str, ttl_s: int) -> bool:
        """Mark an IdP event's ``nonce`` received for ``ttl_s`` (``SET NX EX``): False when it
        already was (a replay)."""
        with fail_closed("idp_event"):
            return bool(self._redis.set(self._keys.idp_event(nonce), 1, nx=True, ex=ttl_s))

    def release_event_nonce(self, nonce: str) -> None:
        """Forget an IdP event's ``nonce`` (it was not acted on: the IdP's retry may be)."""
        with fail_closed("idp_event"):
            self._redis.delete(self._keys.idp_event(nonce))

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


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
