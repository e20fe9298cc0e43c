"""The only code that knows Redis keys and TTLs: ``base.Keys`` spells every one.

``store.SessionStore`` keeps sessions, pending binds, handles and rate-limit counters
(``counting``); ``lock.UserLock`` is a request's turn at one user's keys under their lock, in two
round trips (counters, lock and reads; then writes and release).
"""

from __future__ import annotations

from bff.session_store.store import SessionStore
from bff.session_store.user import UserState

__all__ = ["SessionStore", "UserState"]
