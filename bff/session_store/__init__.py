"""The only code that knows Redis keys and TTLs: ``base.Keys`` spells every one.

``store.SessionStore`` keeps sessions, pending binds and handles; ``step.Step`` is one request's
turn at one user's state in two round trips (counters, lock and reads; then writes and release).
"""

from __future__ import annotations

from bff.session_store.base import STORE_ERRORS, RedisClient
from bff.session_store.step import Step
from bff.session_store.store import SessionStore

__all__ = ["STORE_ERRORS", "RedisClient", "SessionStore", "Step"]
