"""What every flow shares: the limits-lock-reads round trip, handles, lock waits."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time

from bff.env_fields import RateLimits
from bff.ratelimit import counters, enforce
from bff.services import Services
from bff.session_store import Step

audit = logging.getLogger("bff.audit")

BIND_STATUSES = ("SOCIAL_BIND", "USER_REGISTER")
KNOWN_STATUSES = {"SUCCESS", "MFA_AUTH", "ACCESS_DENIED", "PASSWORD_WARN", "PASSWORD_EXPIRED"}
KNOWN_STATUSES.update(BIND_STATUSES)
Limit = tuple[str, RateLimits, list[tuple[str, str]]]  # route, its limits, the request's scopes


def now() -> int:
    return int(time.time())


# How long a request waits for another request of the same user to release the openid lock:
# login and bind about a second (a double tap), refresh and logout not at all. Either way the
# answer is then 409 BFF.REQUEST_IN_PROGRESS with Retry-After: no worker waits on one user.
SPEND_WAIT_S = 1.0
NO_WAIT = 0.0


def new_handle() -> tuple[str, str]:
    """A fresh opaque handle (256 bits from ``secrets``) and its SHA-256, the only form stored."""
    handle = secrets.token_urlsafe(32)
    return handle, handle_digest(handle)


def handle_digest(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def caller_scopes(ip: str | None, openid: str | None) -> list[tuple[str, str]]:
    scopes = [("ip", ip or "unknown")]
    if openid is not None:
        scopes.append(("openid", openid))
    return scopes


def lease_s(svc: Services) -> float:
    """The per-openid lock's lease: longer than what one holder can do (the IDaaS call and a
    JWKS fetch, each under one deadline of connect + read, and a few Redis calls); a lease lost
    anyway is logged and counted (``bff_lock_leases_lost_total``)."""
    return 2 * (svc.settings.idaas_connect_timeout_s + svc.settings.idaas_read_timeout_s) + 15.0


def begin(
    svc: Services,
    openid: str,
    limit: Limit,
    *,
    fail_open: bool,
    wait_s: float | None,
    reads: frozenset[str] = frozenset(),
) -> Step:
    """The first round trip of a flow: count the request against every limit of ``limit``
    (route, limits, scopes), take the openid's lock (unless ``wait_s`` is None) and read
    ``reads``. Over a limit: 429 at once, whoever holds the lock.

    A limiter that fails alone follows ``fail_open``; the same round trip failing as a whole
    fails closed, like the lock and the reads it carries.
    """
    route, limits, scopes = limit
    found = counters(route, scopes, limits)
    lease = None if wait_s is None else lease_s(svc)
    step = svc.store.begin(openid, found, lease_s=lease, reads=reads)
    try:
        enforce(route, found, step.counts, fail_open=fail_open)
        if wait_s is not None:
            step.wait(wait_s)
    except BaseException:
        step.close()
        raise
    return step


def count(
    svc: Services, route: str, limits: RateLimits, scopes: list[tuple[str, str]], fail_open: bool
) -> None:
    """Count a request that takes no lock and reads nothing (one round trip)."""
    found = counters(route, scopes, limits)
    enforce(route, found, svc.store.count(found), fail_open=fail_open)
