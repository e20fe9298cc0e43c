"""Abuse limits: the Limiter, and the keys that name an account or a destination.

A limit is a fixed window per scope (openid, client IP, the IDaaS account a bind names, the
destination of a verification code), counted in Redis and shared by every worker and instance;
the types are in :mod:`bff.limits`, the counting in :mod:`bff.session_store.counting`.

:meth:`Limiter.hit` counts a request now, in a round trip of its own. A flow that takes the
per-openid lock counts in the lock's first round trip instead: it passes
:meth:`Limiter.hits` to ``SessionStore.lock``. Either way the counts are judged here.

Whether a limiter refused by Redis lets the request through is the caller's choice
(``fail_open``): login and the session routes fail open, a bind (a password guess) and a code
send (it costs money) fail closed. Redis unreachable fails closed anyway: the round trip that
counts also takes the lock or writes what the request needs.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from functools import partial

from bff.apps import AppSettings
from bff.errors import RateLimited, SessionStoreUnavailable
from bff.limits import Counter, Hits, Limits, Scope, counters
from bff.observability import RATE_LIMITER_FAIL_OPEN, SESSION_STORE_ERRORS
from bff.session_store import SessionStore

log = logging.getLogger("bff.ratelimit")
_MOBILE = re.compile(r"^\+([0-9]{1,4})-([0-9]+)$")  # ASCII digits only


class Route(enum.Enum):
    """The limited endpoints; each has counters of its own (``{prefix}:rl:{route}:...``)."""

    WECHAT_SESSION = "wechat_session"
    LOGIN = "login"  # and login/phone: one budget
    BIND = "bind"  # every bind and register route
    CAPTCHA = "captcha"
    CODES = "verification_codes"
    SESSION = "session"  # refresh, GET and DELETE /session


def route_limits(settings: AppSettings) -> dict[Route, Limits]:
    """Which of an app's limits limits which route."""
    return {
        Route.WECHAT_SESSION: settings.rate_limit_login,
        Route.LOGIN: settings.rate_limit_login,
        Route.CAPTCHA: settings.rate_limit_login,
        Route.BIND: settings.rate_limit_bind,
        Route.CODES: settings.rate_limit_codes,
        Route.SESSION: settings.rate_limit_session,
    }


class Limiter:
    """Counts requests against the route's limits, per scope; judges the counts."""

    def __init__(self, store: SessionStore, limits: Mapping[Route, Limits]) -> None:
        self._store = store
        self._limits = limits

    def hit(self, route: Route, who: Mapping[Scope, str], *, fail_open: bool) -> None:
        """Count a request of ``route`` by ``who`` now (one round trip).

        :raises RateLimited: with ``Retry-After``, when a counter is over its limit.
        :raises SessionStoreUnavailable: Redis unreachable, or refusing to count while
            ``fail_open`` is false.
        """
        self._store.count(self.hits(route, who, fail_open=fail_open))

    def hits(self, route: Route, who: Mapping[Scope, str], *, fail_open: bool) -> Hits:
        """The counters of a request of ``route`` by ``who``, for the lock's round trip to
        count (``SessionStore.lock``); judged as :meth:`hit` judges them."""
        now = time.time()
        found = tuple(counters(route.value, self._limits[route], who, now))
        return Hits(found, partial(_judge, route, found, fail_open, now))


def _judge(
    route: Route,
    found: Sequence[Counter],
    fail_open: bool,
    now: float,
    counts: Sequence[int] | None,
) -> None:
    """Over a limit: 429 with ``Retry-After`` (the latest window's end of those over it)."""
    if counts is None:
        if not fail_open:
            SESSION_STORE_ERRORS.inc()
            log.warning("rate limiter unavailable; refusing", extra={"route": route.value})
            raise SessionStoreUnavailable()
        RATE_LIMITER_FAIL_OPEN.inc()
        log.warning(
            "rate limiter unavailable; letting the request through", extra={"route": route.value}
        )
        return
    over = [c for c, hits in zip(found, counts, strict=True) if hits > c.rate.amount]
    if over:
        counter = max(over, key=lambda c: c.ends_at)
        extra = {"route": route.value, "scope": counter.scope.value, "limit": str(counter.rate)}
        log.info("rate limited", extra=extra)
        raise RateLimited(headers={"Retry-After": str(counter.seconds_left(now))})


def normalise(identifier: str) -> str:
    """One spelling per phone, e-mail or user name, so nobody gets several budgets by typing
    one differently: ``+086-0138...`` is ``+86-138...``; case, width and outer spaces fold."""
    text = unicodedata.normalize("NFKC", identifier).strip()
    mobile = _MOBILE.match(text)
    if mobile:
        country, national = mobile.groups()
        return f"+{int(country)}-{national.lstrip('0')}"
    return text.casefold()


def destination_key(to: str) -> str:
    """Phone numbers and emails are counted by hash: no contact data in Redis keys."""
    return hashlib.sha256(_bytes(normalise(to))).hexdigest()[:32]


def account_key(secret: bytes, identifier: str) -> str:
    """The IDaaS account a bind names (user name, mobile or e-mail), as a keyed hash: counters
    hold no account names, and nobody without the key can tell whose counter is whose."""
    message = b"account\0" + _bytes(normalise(identifier))
    return hmac.digest(secret, message, "sha256").hex()[:32]


def _bytes(text: str) -> bytes:
    """UTF-8, lone surrogates included: a name is forwarded as typed, so it is counted as typed."""
    return text.encode("utf-8", "surrogatepass")
