"""Rate-limit counters in Redis: one ``INCR`` a counter, and an expiry from the moment it exists.

A counter's key names its window (``bff.limits.Counter.name``), and every counter of a window
expires when the window ends (``EXAT``). A counter this worker has not seen in its window is
created first (``SET key 0 EXAT end NX``: a no-op when another worker got there first), so no
counter ever lives without an expiry; one it has seen needs only the ``INCR``. Should a counter
it has seen be gone anyway (evicted, lost in a failover), the ``INCR`` answers 1 and the
counter gets its expiry in the request's next round trip (:meth:`Windows.repairs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bff.limits import Counter
from bff.session_store.base import Keys

Pipe = Any  # redis-py's Pipeline or ClusterPipeline
MAX_KNOWN = 10_000  # counters a worker remembers; past it, forgotten (more SET NX, nothing else)


@dataclass(frozen=True)
class Queued:
    """Counters queued on a pipeline: where their answers are, and which were created first."""

    keys: tuple[str, ...]
    counters: tuple[Counter, ...]
    created: tuple[bool, ...]

    @property
    def commands(self) -> int:
        return len(self.keys) + sum(self.created)


class Windows:
    """The counters this worker knows to exist (key -> window end; a key names its window)."""

    def __init__(self, keys: Keys) -> None:
        self._keys = keys
        self._known: dict[str, int] = {}

    def queue(self, pipe: Pipe, counters: Sequence[Counter]) -> Queued:
        """Queue each counter's ``INCR`` (after its ``SET ... NX`` when it may be new)."""
        keys = tuple(self._keys.counter(c) for c in counters)
        created = tuple(
            self._known.get(k) != c.ends_at for k, c in zip(keys, counters, strict=True)
        )
        for key, counter, create in zip(keys, counters, created, strict=True):
            if create:
                pipe.execute_command("SET", key, 0, "EXAT", counter.ends_at, "NX")
            pipe.execute_command("INCR", key)
        return Queued(keys, tuple(counters), created)

    def counts(self, queued: Queued, results: Sequence[Any]) -> list[int] | None:
        """The hits of each counter from its answers; None when Redis refused to count (for
        example its ACL denies the counter keys): the limiter's fail-open policy decides."""
        if any(isinstance(r, Exception) for r in results):
            return None
        answers = iter(results)
        hits = []
        for create in queued.created:
            if create:
                next(answers)  # SET NX: OK or None
            hits.append(int(next(answers)))
        self._remember(queued)
        return hits

    def repairs(self, queued: Queued, hits: Sequence[int]) -> list[tuple[str, int]]:
        """``(key, window end)`` of each counter that was gone though this worker had seen it:
        its ``INCR`` made it anew, without an expiry."""
        return [
            (key, counter.ends_at)
            for key, counter, create, n in zip(
                queued.keys, queued.counters, queued.created, hits, strict=True
            )
            if n == 1 and not create
        ]

    def _remember(self, queued: Queued) -> None:
        if len(self._known) + len(queued.keys) > MAX_KNOWN:
            self._known.clear()  # the oldest windows are over anyway; the rest are re-learnt
        for key, counter in zip(queued.keys, queued.counters, strict=True):
            self._known[key] = counter.ends_at
