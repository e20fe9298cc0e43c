"""The per-openid lock, and one user's keys while a request holds it: two Redis round trips.

::

    with svc.store.lock(openid, hits, wait_s=1.0, read=(PendingBind,)) as user:
        pending = user.get(PendingBind)       # read under the lock
        answer = ...                          # the IDaaS call
        user.save_session(session, ttl_s)     # queued
        user.commit()                         # the writes, then the release

Entering sends the first round trip: the counters of ``hits``, the lock (``SET NX PX``) and the
reads. The counts are judged first (429 at once, whoever holds the lock); then the lock is
waited for, up to ``wait_s`` (else ``409 BFF.REQUEST_IN_PROGRESS``). :meth:`UserState.commit`
sends the second: every queued write, then the release. Leaving the block without a commit (an
error, a refusal) releases the lock without writing. Every Redis failure here fails closed.

Standalone Redis runs a pipeline's commands in order, so reads queued behind a ``SET NX`` that
succeeds see what the lock protects. Redis Cluster splits a pipeline by node with no order
between the parts: there the reads follow the lock, and the release follows the writes, each a
round trip of its own.

The release is a plain ``DEL`` while the lease is surely ours: less than half of it has passed
since the ``SET NX`` was sent, and only its holder deletes a lock. Later, it is a compare-and-
delete script, which also notices a lease that ran out (``bff_lock_leases_lost_total``).
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from bff.audit import log_held
from bff.errors import RequestInProgress
from bff.limits import Hits
from bff.observability import LOCK_LEASES_LOST
from bff.session_store.base import (
    STORE_ERRORS,
    Keys,
    RedisClient,
    check_wait,
    fail_closed,
    log,
    ok,
    queue_kept,
)
from bff.session_store.counting import Pipe, Windows
from bff.session_store.user import Command, Readable, UserState

# Delete the lock only if it is still ours (its lease may have run out and another taken it).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_LOCK_POLL_S = 0.05
# A lock's token: unique to this process (random, drawn once) and to this lock (a counter). It
# tells holders apart; it is no secret, so no system call draws it per request.
_PROCESS = secrets.token_hex(8)
_LOCKS = itertools.count()


class UserLock:
    """The context manager :meth:`SessionStore.lock` returns; see the module's docstring."""

    def __init__(
        self,
        client: RedisClient,
        keys: Keys,
        windows: Windows,
        openid: str,
        *,
        hits: Hits | None,
        lease_s: float,
        wait_s: float,
        read: Sequence[Readable],
        state_ttl_s: int,
        handle_ttl_s: int,
        replica_wait: tuple[int, int] = (0, 0),
    ) -> None:
        self._redis, self._keys, self._windows = client, keys, windows
        self.cluster = not hasattr(client, "connection_pool")  # RedisCluster has node pools
        self._hits, self._lease_s, self._wait_s = hits, lease_s, wait_s
        self._replica_wait = replica_wait
        self._user = UserState(self, keys, openid, tuple(read), state_ttl_s, handle_ttl_s)
        self.openid = openid
        self._token = f"{_PROCESS}{os.getpid():x}.{next(_LOCKS):x}"
        self._sent_at = 0.0  # when the SET NX that took the lock was sent (monotonic)
        self.held = False
        self.repairs: list[tuple[str, int]] = []  # counters to give back their expiry

    def __enter__(self) -> UserState:
        try:
            self._open()
            deadline = time.monotonic() + self._wait_s
            while not self.held:
                if time.monotonic() >= deadline:
                    raise RequestInProgress(headers={"Retry-After": "1"})
                time.sleep(_LOCK_POLL_S)
                self._take()
        except BaseException:
            self.release()  # the lock if taken, and the counters' repairs
            raise
        return self._user

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.held or self.repairs:
            self.release()  # after a commit: nothing left to do

    # ---------------------------------------------------------------- the first round trip

    def _open(self) -> None:
        """Count, lock, read: one round trip (standalone Redis)."""
        counters = self._hits.counters if self._hits else ()
        with fail_closed("lock"):
            with self._redis.pipeline(transaction=False) as pipe:
                queued = self._windows.queue(pipe, counters)
                self._queue_lock(pipe)
                results = pipe.execute(raise_on_error=False)
        hits = self._windows.counts(queued, results[: queued.commands])
        if hits is not None:
            self.repairs = self._windows.repairs(queued, hits)
        rest = results[queued.commands :]
        self.held = ok(rest[0], "lock") is True
        if self._hits is not None:
            self._hits.judge(hits)  # over a limit: 429 at once, whoever holds the lock
        if self.held:
            self._have(rest[1:])

    def _take(self) -> None:
        """Try the lock again (and read again): one round trip."""
        with fail_closed("lock"):
            with self._redis.pipeline(transaction=False) as pipe:
                self._queue_lock(pipe)
                results = pipe.execute(raise_on_error=False)
        self.held = ok(results[0], "lock") is True
        if self.held:
            self._have(results[1:])

    def _queue_lock(self, pipe: Pipe) -> None:
        self._sent_at = time.monotonic()
        key, lease_ms = self._keys.lock(self.openid), int(self._lease_s * 1000)
        pipe.execute_command("SET", key, self._token, "PX", lease_ms, "NX")
        if not self.cluster:
            self._user.queue_reads(pipe)

    def _have(self, reads: list[Any]) -> None:
        """The lock is ours: take what was read behind it, or read now (Redis Cluster)."""
        if self.cluster:
            self._read()
        else:
            self._user.take_reads(reads)

    def _read(self) -> None:
        """The reads, once the lock is ours (Redis Cluster): one round trip."""
        with fail_closed("read"):
            with self._redis.pipeline(transaction=False) as pipe:
                self._user.queue_reads(pipe)
                results = pipe.execute(raise_on_error=False)
        self._user.take_reads(results)

    # ---------------------------------------------------------------- the second round trip

    def execute(self, sets: list[Command], deletes: list[str], *, release: bool) -> list[Any]:
        """One round trip: ``sets``; with ``release``, the counters' repairs and the release;
        then one ``DEL`` of ``deletes`` (which the lock's key joins while the lease is surely
        ours). :returns: the answers of ``sets``."""
        repairs = self.repairs if release else []
        replica_wait = self._replica_wait if sets or deletes else (0, 0)
        lock = self._keys.lock(self.openid)
        fast = time.monotonic() - self._sent_at < self._lease_s / 2
        script = release and self.held and not fast
        if release and self.held and fast:
            deletes = [*deletes, lock]
        with self._redis.pipeline(transaction=False) as pipe:
            for command in sets:
                pipe.execute_command(*command, **({"get": True} if command[-1] == "GET" else {}))
            for key, ends_at in repairs:
                pipe.execute_command("EXPIREAT", key, ends_at)
            if script:
                pipe.eval(_RELEASE, 1, lock, self._token)
            _queue_deletes(pipe, deletes, self.cluster)
            waited = queue_kept(pipe, replica_wait)  # audit records; Sentinel: WAIT for a replica
            results = pipe.execute()
        if release:
            self.held, self.repairs = False, []
        if waited:
            check_wait(results[-1], replica_wait)
        if sets or deletes:  # writes, kept: the audit lines of the events they keep
            log_held()
        if script and results[len(sets) + len(repairs)] != 1:
            LOCK_LEASES_LOST.inc()  # it ran out while we worked: another may have run alongside
            log.warning("openid lock lease lost before release")
        return results[: len(sets)]

    def release(self) -> None:
        """Release without writing (a block left without a commit); never raises."""
        try:
            self.execute([], [], release=True)
        except STORE_ERRORS:
            pass  # Redis went away: the lease runs out by itself


def _queue_deletes(pipe: Pipe, keys: list[str], cluster: bool) -> None:
    """One ``DEL`` of every key (standalone), or one a key: in a cluster they sit on any slot."""
    if keys and not cluster:
        pipe.execute_command("DEL", *keys)
    elif keys:
        for key in keys:
            pipe.execute_command("DEL", key)
