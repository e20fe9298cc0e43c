"""A value built on first use: Redis Cluster clients connect when they are created, so they are
built lazily, and the process starts (and /readyz reports) while the cluster is down."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """Builds the value once, on the first ``get()``, even with several threads asking."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value

    @property
    def built(self) -> T | None:
        """The value if it was built, without building it."""
        return self._value
