"""One request's turn at one user's state, in two Redis round trips.

The first (:meth:`Step.open`) counts every rate-limit counter of the request, takes the
per-openid lock and reads what the flow needs (the pending bind, the session, the handle index).
The flow then calls the IDaaS; the second round trip (:meth:`Step.commit`) writes what it decided
and releases the lock. A step left without a commit (an error, a refusal) releases the lock on
its way out.

Standalone Redis runs a pipeline's commands in order on one connection, so the reads that follow
a successful ``SET lock NX`` in the same pipeline see what the lock protects. Redis Cluster splits
a pipeline per node with no order between the parts: there the lock is taken before the reads,
and the writes land before the release, each a round trip of its own.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import redis
from redis.exceptions import ResponseError

from bff.errors import RequestInProgress
from bff.models import CachedSession, Counter, PendingBind
from bff.observability import LOCK_LEASES_LOST
from bff.session_store.base import (
    STORE_ERRORS,
    Keys,
    RedisClient,
    decode_pending,
    decode_session,
    encode,
    fail_closed,
    log,
    previous_subject,
    unavailable,
)

# Delete the lock only if it is still ours (its lease may have run out and another taken it).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
# Fixed windows, every counter of a request in one command: INCR, a new window's EXPIRE (also
# for a key found without one), the hits and seconds left of each. One EVAL in place of three
# commands a counter: redis-py spends more CPU per command than Redis does (measured: a bind's
# first round trip went from 11 commands to 3).
_COUNT = """
local out = {}
for i, key in ipairs(KEYS) do
  local hits = redis.call('INCR', key)
  local left = redis.call('TTL', key)
  if left < 0 then
    left = tonumber(ARGV[i])
    redis.call('EXPIRE', key, left)
  end
  out[#out + 1] = hits
  out[#out + 1] = left
end
return out
"""
_LOCK_POLL_S = 0.05
READS = frozenset({"pending", "session", "handles"})

Pipe = Any  # redis-py's Pipeline or ClusterPipeline


class Step:
    """What one request holds between its two round trips: counts, the lock, reads, writes."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        openid: str,
        *,
        lease_s: float | None,
        reads: frozenset[str],
        state_ttl_s: int,
    ) -> None:
        assert reads <= READS  # noqa: S101
        self._redis, self._keys, self._openid = client, keys, openid
        self._cluster = isinstance(client, redis.RedisCluster)
        self._lease_ms = int(lease_s * 1000) if lease_s else 0
        self._token = secrets.token_hex(16) if lease_s else None
        self._reads = reads
        self._state_ttl_s = state_ttl_s
        self._writes: list[Callable[[Pipe], None]] = []
        self._replaced_at: int | None = None  # the SET ... GET of a saved session
        self.counts: list[tuple[int, int]] | None = []  # (hits, seconds left); None: failed
        self.locked = False
        self.pending: PendingBind | None = None
        self.session: CachedSession | None = None
        self.handles: tuple[str, ...] = ()
        self.previous_subject: str | None = None  # of the session a save replaced

    # ---------------------------------------------------------------- the first round trip

    def open(self, counters: Sequence[Counter]) -> Step:
        """Count, lock, read: one round trip (standalone Redis)."""
        scripts = self._count_scripts(counters)
        with fail_closed("begin"):
            with self._redis.pipeline(transaction=False) as pipe:
                for script in scripts:
                    keys, windows = zip(*script, strict=True)
                    pipe.execute_command("EVAL", _COUNT, len(keys), *keys, *windows)
                if self._token:
                    _set(
                        pipe, self._keys.lock(self._openid), self._token, px=self._lease_ms, nx=True
                    )
                if not self._cluster:
                    self._queue_reads(pipe)
                results = pipe.execute(raise_on_error=False)
        self.counts = _counts(results[: len(scripts)])
        rest = results[len(scripts) :]
        if self._token:
            self.locked = _ok(rest.pop(0), "lock") is True
        if self._cluster:
            if self.locked or not self._token:
                self._read()
        else:
            self._take_reads(rest)
        return self

    def _count_scripts(self, counters: Sequence[Counter]) -> list[list[tuple[str, int]]]:
        """The (key, window) pairs each counting EVAL gets: all in one script, or one script a
        key in a cluster (the keys sit on any slot)."""
        pairs = [(self._keys.counter(c.name), c.window_s) for c in counters]
        if not pairs:
            return []
        return [[pair] for pair in pairs] if self._cluster else [pairs]

    def wait(self, wait_s: float) -> None:
        """Until the lock is ours: polled for ``wait_s`` (0: not at all), the reads redone.

        :raises RequestInProgress: (``Retry-After``) when another request keeps holding it.
        """
        deadline = time.monotonic() + wait_s
        while not self.locked and self._token:
            if time.monotonic() >= deadline:
                raise RequestInProgress(headers={"Retry-After": "1"})
            time.sleep(_LOCK_POLL_S)
            with fail_closed("lock"):
                with self._redis.pipeline(transaction=False) as pipe:
                    _set(
                        pipe, self._keys.lock(self._openid), self._token, px=self._lease_ms, nx=True
                    )
                    if not self._cluster:
                        self._queue_reads(pipe)
                    results = pipe.execute(raise_on_error=False)
            self.locked = _ok(results[0], "lock") is True
            if self.locked and self._cluster:
                self._read()
            elif self.locked:
                self._take_reads(results[1:])

    def _queue_reads(self, pipe: Pipe) -> None:
        if "pending" in self._reads:
            pipe.get(self._keys.pending(self._openid))
        if "session" in self._reads:
            pipe.get(self._keys.session(self._openid))
        if "handles" in self._reads:
            pipe.zrange(self._keys.handles(self._openid), 0, -1)

    def _take_reads(self, results: list[Any]) -> None:
        values = iter(results)
        if "pending" in self._reads:
            self.pending = decode_pending(_ok(next(values), "pending"))
        if "session" in self._reads:
            self.session = decode_session(_ok(next(values), "session"))
        if "handles" in self._reads:
            self.handles = tuple(_ok(next(values), "handles") or ())

    def _read(self) -> None:
        if not self._reads:
            return
        with fail_closed("read"):
            with self._redis.pipeline(transaction=False) as pipe:
                self._queue_reads(pipe)
                results = pipe.execute(raise_on_error=False)
        self._take_reads(results)

    # ---------------------------------------------------------------- writes, for the commit

    def save_session(self, session: CachedSession, ttl_s: int) -> None:
        """Cache the session and drop the pending bind (the commit tells what it replaced)."""

        def write(pipe: Pipe) -> None:
            self._replaced_at = len(pipe)  # where the SET ... GET's answer will be
            _set(pipe, self._keys.session(self._openid), encode(session), ex=ttl_s, get=True)
            pipe.delete(self._keys.pending(self._openid))

        self._writes.append(write)

    def replace_session(self, session: CachedSession, ttl_s: int) -> None:
        self._writes.append(
            lambda pipe: _set(pipe, self._keys.session(self._openid), encode(session), ex=ttl_s)
        )

    def delete_session(self) -> None:
        self._writes.append(lambda pipe: pipe.delete(self._keys.session(self._openid)))

    def save_pending(self, pending: PendingBind) -> None:
        self._writes.append(
            lambda pipe: _set(
                pipe, self._keys.pending(self._openid), encode(pending), ex=self._state_ttl_s
            )
        )

    def delete_pending(self, state_token: str | None = None) -> None:
        """Drop the pending bind; with ``state_token``, only if it is the one read under the
        lock (what it spent), not a fresher one."""
        if state_token is not None and (
            self.pending is None or self.pending.state_token != state_token
        ):
            return
        self._writes.append(lambda pipe: pipe.delete(self._keys.pending(self._openid)))

    def forget(self, handle_digest: str | None = None) -> None:
        """Logout: the session, the pending bind and every handle the index lists (read in the
        first round trip, which ``handles`` must name), plus ``handle_digest``."""
        digests = sorted({*self.handles, *((handle_digest,) if handle_digest else ())})

        def write(pipe: Pipe) -> None:
            pipe.delete(self._keys.session(self._openid))
            pipe.delete(self._keys.pending(self._openid))
            pipe.delete(self._keys.handles(self._openid))
            for digest in digests:  # one DEL each: they sit on different cluster slots
                pipe.delete(self._keys.handle(digest))

        self._writes.append(write)

    # ---------------------------------------------------------------- the second round trip

    def commit(self) -> None:
        """Write and release the lock: one round trip (standalone Redis). Fails closed."""
        writes, self._writes = self._writes, []
        release = self._token if self.locked else None
        self.locked = False
        if not writes and not release:
            return
        with fail_closed("commit"):
            with self._redis.pipeline(transaction=False) as pipe:
                for write in writes:
                    write(pipe)
                if release and not self._cluster:
                    pipe.eval(_RELEASE, 1, self._keys.lock(self._openid), release)
                results = pipe.execute()
            if release and self._cluster:  # only once every write landed
                results.append(
                    self._redis.eval(_RELEASE, 1, self._keys.lock(self._openid), release)
                )
        if self._replaced_at is not None:
            self.previous_subject = previous_subject(results[self._replaced_at])
        if release and results[-1] != 1:
            _lease_lost()

    def close(self) -> None:
        """Release a lock still held (a step that ended without its commit); never raises."""
        if not self.locked or not self._token:
            return
        self.locked = False
        try:
            released: Any = self._redis.eval(
                _RELEASE, 1, self._keys.lock(self._openid), self._token
            )
        except STORE_ERRORS:
            return  # Redis went away: the lease runs out by itself
        if released != 1:
            _lease_lost()

    def __enter__(self) -> Step:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _set(
    pipe: Pipe,
    key: str,
    value: str | int,
    *,
    ex: int | None = None,
    px: int | None = None,
    nx: bool = False,
    get: bool = False,
) -> None:
    """``SET`` queued as the command it is: redis-py's ``set()`` inspects its arguments on every
    call (measured: 2 % of a bind's CPU, for four SETs)."""
    args: list[str | int] = ["SET", key, value]
    if ex is not None:
        args += ["EX", ex]
    if px is not None:
        args += ["PX", px]
    if nx:
        args.append("NX")
    if get:
        args.append("GET")
        pipe.execute_command(*args, get=True)  # the answer is the old value, not OK
    else:
        pipe.execute_command(*args)


def _ok(result: Any, what: str) -> Any:
    """A command's result; a Redis error in it fails the step closed."""
    if isinstance(result, Exception):
        unavailable(what, result)
    return result


def _counts(results: list[Any]) -> list[tuple[int, int]] | None:
    """``(hits, seconds left)`` per counter; None when Redis refused to count (e.g. its ACL
    denies the counter keys): the caller's fail-open or fail-closed policy decides."""
    if any(isinstance(r, ResponseError | Exception) for r in results):
        return None
    flat = [int(v) for answer in results for v in answer]
    return [(flat[i], max(0, flat[i + 1])) for i in range(0, len(flat), 2)]


def _lease_lost() -> None:
    # The lease ran out while the request worked: another request may have run alongside.
    LOCK_LEASES_LOST.inc()
    log.warning("openid lock lease lost before release")
