"""One user's keys while a request holds their lock: typed reads, and writes queued for the
commit (:mod:`bff.session_store.lock` sends both)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from bff.models import CachedSession, HandleIndex, PendingBind
from bff.session_store.base import (
    Keys,
    decode_index,
    decode_pending,
    decode_session,
    encode,
    fail_closed,
    ok,
)
from bff.session_store.counting import Pipe

T = TypeVar("T", PendingBind, CachedSession, HandleIndex)
Readable = type[PendingBind] | type[CachedSession] | type[HandleIndex]
# What can be read under the lock: the kind of key, and how its value is decoded.
READS: dict[Readable, tuple[str, Callable[[Any], Any]]] = {
    PendingBind: ("pending", decode_pending),
    CachedSession: ("session", decode_session),
    HandleIndex: ("handles", decode_index),  # a sorted set
}
Command = tuple[Any, ...]


class Sender(Protocol):
    """The lock, which sends the second round trip."""

    cluster: bool

    def execute(self, sets: list[Command], deletes: list[str], *, release: bool) -> list[Any]: ...


class UserState:
    """One user's keys while the request holds their lock: typed reads, queued writes."""

    def __init__(
        self,
        lock: Sender,
        keys: Keys,
        openid: str,
        read: tuple[Readable, ...],
        state_ttl_s: int,
        handle_ttl_s: int,
    ) -> None:
        self._lock, self._keys, self.openid = lock, keys, openid
        self._read, self._values = read, dict[Readable, Any]()
        self._state_ttl_s, self._handle_ttl_s = state_ttl_s, handle_ttl_s
        # key -> the commands that write it, or None: DEL it (a later write of a key wins)
        self._writes: dict[str, tuple[Command, ...] | None] = {}
        self.replaced: CachedSession | None = None  # the session a save_session replaced

    # ---------------------------------------------------------------- reads

    def get(self, kind: type[T]) -> T | None:
        """What was read of ``kind`` under the lock (None: no such key).

        :raises LookupError: ``kind`` was not among the lock's reads (a bug, not an absence).
        """
        if kind not in self._values:
            raise LookupError(f"{kind.__name__} was not read under this lock")
        value: T | None = self._values[kind]
        return value

    def queue_reads(self, pipe: Pipe) -> None:
        for kind in self._read:
            key = self._keys.key(READS[kind][0], self.openid)
            if kind is HandleIndex:
                pipe.zrange(key, 0, -1)
            else:
                pipe.get(key)

    def take_reads(self, results: list[Any]) -> None:
        for kind, raw in zip(self._read, results, strict=True):
            self._values[kind] = READS[kind][1](ok(raw, kind.__name__))

    # ---------------------------------------------------------------- writes

    def save_session(self, session: CachedSession, ttl_s: int) -> None:
        """Cache the session (what it replaces is :attr:`replaced` after the commit) and drop
        the pending bind, which the session ends."""
        key = self._keys.session(self.openid)
        self._writes[key] = (("SET", key, encode(session), "EX", ttl_s, "GET"),)
        self._writes[self._keys.pending(self.openid)] = None
        self._index(session)

    def replace_session(self, session: CachedSession, ttl_s: int) -> None:
        key = self._keys.session(self.openid)
        self._writes[key] = (("SET", key, encode(session), "EX", ttl_s),)
        self._index(session)

    def _index(self, session: CachedSession) -> None:
        """List the openid under its IDaaS subject (ending every session of one IDaaS user needs
        it), scored by when the session expires; the index lives as long as its longest entry
        (NX: a new index; GT: never shortened)."""
        if session.id_token_sub is None:
            return
        key, ends = self._keys.subject(session.id_token_sub), session.expire_at
        self._writes[key] = (
            ("ZADD", key, ends, self.openid),
            ("EXPIREAT", key, ends, "NX"),
            ("EXPIREAT", key, ends, "GT"),
        )

    def unlist(self, subject: str) -> None:
        """Take the openid off IDaaS user ``subject``'s index (the key goes with its last)."""
        key = self._keys.subject(subject)
        self._writes[key] = (("ZREM", key, self.openid),)

    def delete_session(self) -> None:
        self._writes[self._keys.session(self.openid)] = None

    def save_pending(self, pending: PendingBind) -> None:
        key = self._keys.pending(self.openid)
        self._writes[key] = (("SET", key, encode(pending), "EX", self._state_ttl_s),)

    def delete_pending(self, spent: PendingBind) -> None:
        """Drop the pending bind if it is still ``spent`` (the one read under the lock)."""
        if self.get(PendingBind) == spent:
            self._writes[self._keys.pending(self.openid)] = None

    def forget(self, handle_digest: str | None = None) -> None:
        """Logout: the session, the pending bind and every handle of the index (read under the
        lock), plus ``handle_digest``; each handle revoked, so that its device is told it was
        signed out (``BFF.SESSION_REVOKED``), not that its handle is unknown."""
        index = self.get(HandleIndex) or HandleIndex(())
        for key in (self._keys.session(self.openid), self._keys.pending(self.openid)):
            self._writes[key] = None
        self._writes[self._keys.handles(self.openid)] = None
        for digest in sorted({*index.digests, *((handle_digest,) if handle_digest else ())}):
            self._writes[self._keys.handle(digest)] = None
            revoked = self._keys.revoked(digest)
            self._writes[revoked] = (("SET", revoked, 1, "EX", self._handle_ttl_s),)

    def commit(self) -> None:
        """The writes, then the release: one round trip (standalone Redis). Fails closed."""
        lock, writes, self._writes = self._lock, self._writes, {}
        sets = [command for commands in writes.values() if commands for command in commands]
        deletes = [key for key, command in writes.items() if command is None]
        with fail_closed("commit"):
            if lock.cluster:  # every write lands before the release
                answers = lock.execute(sets, deletes, release=False)
                lock.execute([], [], release=True)
            else:
                answers = lock.execute(sets, deletes, release=True)
        for command, answer in zip(sets, answers, strict=True):
            if command[-1] == "GET":  # the session's SET ... GET: what it replaced
                self.replaced = decode_session(answer)
