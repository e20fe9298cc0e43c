"""Handles: one per device a user opened a WeChat session on, each with its device's record.

``{prefix}:handle:{sha256}`` holds the record (whose it is, the device, when it was issued and
last used); ``{prefix}:handles:{openid}`` lists the user's live handles (a sorted set scored by
expiry); ``{prefix}:revoked:{sha256}`` marks a handle ended on purpose (logout, "end this
device", an operator, the IdP), so that it answers ``401 BFF.SESSION_REVOKED``, not "unknown".

:meth:`HandleStore.authenticate` is what every request with a handle costs: one round trip on
standalone Redis (a script reads the handle, then the session of its openid, and bumps the
handle's ``last_used`` at most once a minute); on Redis Cluster, whose keys sit on any slot, a
round trip each. Every call fails closed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from typing import Any

from bff.models import CachedSession, HandleRecord
from bff.session_store.base import (
    Keys,
    RedisClient,
    decode_handle,
    decode_session,
    encode,
    execute_kept,
    fail_closed,
)

# KEYS[1] the handle, KEYS[2] its tombstone; ARGV[1] the session key's prefix (the openid
# follows), ARGV[2] now, ARGV[3] how old last_used may grow before it is written again.
_AUTHENTICATE = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {false, false, redis.call('EXISTS', KEYS[2])} end
local ok, record = pcall(cjson.decode, raw)
if not ok or type(record) ~= 'table' or type(record.openid) ~= 'string' then
  return {raw, false, 0}
end
local now = tonumber(ARGV[2])
if now - (tonumber(record.last_used) or 0) >= tonumber(ARGV[3]) then
  record.last_used = now
  raw = cjson.encode(record)
  redis.call('SET', KEYS[1], raw, 'KEEPTTL')
end
return {raw, redis.call('GET', ARGV[1] .. record.openid), 0}
"""
LAST_USED_EVERY_S = 60


def session_id(digest: str) -> str:
    """The public name of a handle in ``GET /api/v1/sessions``: derived from its digest, which
    it does not reveal (the digest names the handle's key)."""
    return hashlib.sha256(b"bff-session-id\0" + digest.encode()).hexdigest()[:16]


class HandleStore:
    """The handles of one app (its key prefix)."""

    def __init__(
        self,
        client: Callable[[], RedisClient],
        keys: Keys,
        ttl_s: int,
        replica_wait: tuple[int, int] = (0, 0),
    ) -> None:
        self._client, self._keys, self._ttl_s = client, keys, ttl_s
        self._replica_wait = replica_wait  # Sentinel mode: saved and ended handles WAIT
        self._script: Any = None  # redis-py's Script for _AUTHENTICATE, made on first use

    def save(self, digest: str, record: HandleRecord) -> None:
        """Store the handle and list it in the openid's index, in one round trip; expired
        entries of the index are pruned here, so it stays as small as the user's handles."""
        now = int(time.time())
        record = dataclasses.replace(record, issued_at=now, last_used=now)
        index = self._keys.handles(record.openid)
        with fail_closed("save_handle"), self._client().pipeline(transaction=False) as pipe:
            pipe.set(self._keys.handle(digest), encode(record), ex=self._ttl_s)
            pipe.zadd(index, {digest: now + self._ttl_s})
            pipe.zremrangebyscore(index, "-inf", now)
            pipe.expire(index, self._ttl_s)
            execute_kept(pipe, self._replica_wait)  # with the request's audit records

    def authenticate(self, digest: str) -> tuple[HandleRecord | None, CachedSession | None, bool]:
        """The handle's record, its user's session, and (no record) whether it was revoked."""
        redis = None
        with fail_closed("authenticate"):
            redis = self._client()
            if not hasattr(redis, "connection_pool"):  # Redis Cluster: keys on any slot
                return self._authenticate_apart(redis, digest)
            if self._script is None:  # EVALSHA from then on: the script is not resent
                self._script = redis.register_script(_AUTHENTICATE)
            keys = (self._keys.handle(digest), self._keys.revoked(digest))
            args = (self._keys.session(""), int(time.time()), LAST_USED_EVERY_S)
            raw, session, revoked = self._script(keys=keys, args=args, client=redis)
        return decode_handle(raw), decode_session(session), bool(revoked)

    def _authenticate_apart(
        self, redis: Any, digest: str
    ) -> tuple[HandleRecord | None, CachedSession | None, bool]:
        record = decode_handle(redis.get(self._keys.handle(digest)))
        if record is None:
            return None, None, bool(redis.exists(self._keys.revoked(digest)))
        touched = self.touch_apart(redis, digest, record)
        if touched is None:
            return None, None, True  # ended between the read and the write
        return touched, decode_session(redis.get(self._keys.session(record.openid))), False

    def touch_apart(self, redis: Any, digest: str, record: HandleRecord) -> HandleRecord | None:
        """Redis Cluster: ``last_used`` written back when due, only while the handle still
        exists (``XX``: one ended since it was read is not brought back, without an expiry).

        :returns: the record as it now is; None when the handle was ended meanwhile.
        """
        now = int(time.time())
        if now - record.last_used < LAST_USED_EVERY_S:
            return record
        touched = dataclasses.replace(record, last_used=now)
        kept = redis.set(self._keys.handle(digest), encode(touched), keepttl=True, xx=True)
        return touched if kept else None

    def live(self, openid: str) -> list[tuple[str, HandleRecord]]:
        """The user's live handles, ``(digest, record)``, the oldest first."""
        with fail_closed("handles"):
            redis = self._client()
            found: Any = redis.zrangebyscore(self._keys.handles(openid), int(time.time()), "+inf")
            digests: list[str] = list(found)
            with redis.pipeline(transaction=False) as pipe:
                for digest in digests:
                    pipe.get(self._keys.handle(digest))
                raws = pipe.execute()
        records = [(d, decode_handle(raw)) for d, raw in zip(digests, raws, strict=True)]
        live = [(d, r) for d, r in records if r is not None]
        return sorted(live, key=lambda pair: pair[1].issued_at)

    def end(self, openid: str, digest: str) -> None:
        """End one handle: gone, off the index, and revoked (its device is told so)."""
        with fail_closed("end_handle"), self._client().pipeline(transaction=False) as pipe:
            pipe.delete(self._keys.handle(digest))
            pipe.zrem(self._keys.handles(openid), digest)
            pipe.set(self._keys.revoked(digest), 1, ex=self._ttl_s)
            execute_kept(pipe, self._replica_wait)
