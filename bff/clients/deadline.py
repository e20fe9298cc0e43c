"""One overall deadline per upstream call, which ``requests`` does not have.

``requests`` bounds each socket operation (connect, then every read), not the call: an upstream
that sends one byte inside every read timeout holds the call forever. So each call registers
here with its deadline; a watchdog thread (one per process, idle while nothing is in flight)
shuts down the socket of a call that outlives it, and the blocked read returns at once.

The connection classes below tell the watchdog which socket a call uses: urllib3 calls their
``request()`` on the connection it picked for the call, in the caller's thread (or greenlet).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


@dataclass(eq=False)
class Call:
    """An upstream call in flight: its deadline, and the connection once urllib3 picked one."""

    deadline: float
    conn: Any = None
    sock: socket.socket | None = None  # kept: http.client drops conn.sock on a closing answer
    expired: bool = False


_CALL: ContextVar[Call | None] = ContextVar("bff_upstream_call", default=None)


class Watchdog:
    """Shuts down the socket of every call past its deadline."""

    def __init__(self) -> None:
        self._calls: set[Call] = set()
        self._wake = threading.Condition()
        self._pid = 0  # the process the thread runs in (gunicorn forks after imports)
        self._until: float | None = None  # when the thread wakes by itself (None: it waits)

    def watch(self, call: Call) -> None:
        with self._wake:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="bff-deadlines", daemon=True).start()
            self._calls.add(call)
            if self._until is None or call.deadline < self._until:
                self._wake.notify()  # else it wakes in time anyway: calls share one timeout

    def unwatch(self, call: Call) -> None:
        with self._wake:
            self._calls.discard(call)

    def _run(self) -> None:
        with self._wake:
            while True:
                if not self._calls:
                    self._until = None
                    self._wake.wait()
                    continue
                now = time.monotonic()
                nearest = min(c.deadline for c in self._calls)
                if nearest > now:
                    self._until = nearest
                    self._wake.wait(nearest - now)
                    continue
                for call in [c for c in self._calls if c.deadline <= now]:
                    self._calls.discard(call)
                    call.expired = True
                    _shut(call)  # under the lock: the call cannot be unwatched meanwhile


def _shut(call: Call) -> None:
    sock = call.sock or getattr(call.conn, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


WATCHDOG = Watchdog()


def begin(total_s: float) -> tuple[Call, Any]:
    """Start watching a call that must end within ``total_s``; pass the result to :func:`end`."""
    call = Call(time.monotonic() + total_s)
    token = _CALL.set(call)
    WATCHDOG.watch(call)
    return call, token


def end(call: Call, token: Any) -> None:
    WATCHDOG.unwatch(call)
    _CALL.reset(token)


class _Tracked:
    """Mixed into urllib3's connections: the call in flight learns its connection."""

    sock: socket.socket | None

    def request(self, *args: Any, **kwargs: Any) -> None:
        call = _CALL.get()
        if call is not None:
            call.conn = self  # a connection still connecting has no socket yet
        try:
            super().request(*args, **kwargs)  # type: ignore[misc]
        finally:
            if call is not None:
                call.sock = self.sock


class _HTTPConnection(_Tracked, HTTPConnection):
    pass


class _HTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections the watchdog can cut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
