"""Abuse limits: which counters a request counts against, and what their counts mean.

A limit is a fixed window per scope (openid, client IP, the IDaaS account a bind names, the
destination of a verification code), counted in Redis and shared by every worker and instance.
The ``limits`` library parses the values (``5/minute``); the counting is bff's own, because it
must ride in the same Redis round trip as the per-openid lock and the reads of the request
(``SessionStore.begin``): one ``EVAL`` counts every counter of the request (``INCR``, ``TTL``,
and ``EXPIRE`` for a new window; :mod:`bff.session_store.step`). ``limits``' storages make their
own round trip per counter.

Whether a limiter outage lets the request through is the caller's choice (``fail_open``): login
and the session routes fail open, a bind (a password guess) and a code send (it costs money)
fail closed. A failed round trip that also carried the lock or a read fails closed anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence

from bff.env_fields import RateLimits
from bff.errors import RateLimited, SessionStoreUnavailable
from bff.models import Counter
from bff.observability import RATE_LIMITER_FAIL_OPEN, SESSION_STORE_ERRORS

log = logging.getLogger("bff.ratelimit")
_MOBILE = re.compile(r"^\+([0-9]{1,4})-([0-9]+)$")  # ASCII digits only


def counters(route: str, scopes: Iterable[tuple[str, str]], limits: RateLimits) -> list[Counter]:
    """Every counter a request of ``route`` counts against: each limit of each scope given."""
    return [
        Counter(route, scope, ident, item.amount, item.get_expiry())
        for scope, ident in scopes
        for item in limits.get(scope, ())
    ]


def enforce(
    route: str,
    found: Sequence[Counter],
    counts: Sequence[tuple[int, int]] | None,
    *,
    fail_open: bool,
) -> None:
    """Judge the counts (``(hits, seconds left)`` per counter, None when counting failed).

    :raises RateLimited: with ``Retry-After`` when one is over its limit.
    :raises SessionStoreUnavailable: when counting failed and ``fail_open`` is false.
    """
    if counts is None:
        if not fail_open:
            SESSION_STORE_ERRORS.inc()
            log.warning("rate limiter unavailable; refusing", extra={"route": route})
            raise SessionStoreUnavailable()
        RATE_LIMITER_FAIL_OPEN.inc()
        log.warning("rate limiter unavailable; letting the request through", extra={"route": route})
        return
    over = [(c, left) for c, (hits, left) in zip(found, counts, strict=True) if hits > c.count]
    if over:
        counter, left = max(over, key=lambda pair: pair[1])
        retry_after = max(1, left)
        log.info(
            "rate limited",
            extra={
                "route": route,
                "scope": counter.scope,
                "limit": f"{counter.count}/{counter.window_s}s",
            },
        )
        raise RateLimited(headers={"Retry-After": str(retry_after)})


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
