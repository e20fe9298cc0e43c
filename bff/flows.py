"""The login, bind and session flows: the caller and the request in, a trimmed outcome out.

Plain functions over :class:`~bff.services.Services`; no Flask, so a CLI or a worker can run
them. Each flow applies its own abuse limits (which limits, which scopes), takes the per-openid
lock where a single-use credential is spent, calls the IDaaS and settles the answer in Redis.
Tokens stop here: the session_token and state_token go to the SessionStore, never to an outcome.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from bff.errors import (
    SESSION_TOKEN_GONE,
    STATE_TOKEN_GONE,
    IdaasError,
    NoPendingBind,
    SessionExpired,
    SessionStoreUnavailable,
    bad_response,
)
from bff.models import CachedSession, Caller, Device, PendingBind
from bff.observability import LOGIN_OUTCOMES, note_openid, note_outcome
from bff.ratelimit import account_key
from bff.services import Services
from bff.settings import RateLimits

audit = logging.getLogger("bff.audit")

BIND_STATUSES = ("SOCIAL_BIND", "USER_REGISTER")
KNOWN_STATUSES = {"SUCCESS", "MFA_AUTH", "ACCESS_DENIED", "PASSWORD_WARN", "PASSWORD_EXPIRED"}
KNOWN_STATUSES.update(BIND_STATUSES)


def _now() -> int:
    return int(time.time())


# How long a request waits for another request of the same user to release the openid lock:
# login and bind about a second (a double tap), refresh and logout not at all. Either way the
# answer is then 409 BFF.REQUEST_IN_PROGRESS with Retry-After: no worker waits on one user.
SPEND_WAIT_S = 1.0
NO_WAIT = 0.0


def _openid_lock(svc: Services, caller: Caller, wait_s: float) -> AbstractContextManager[None]:
    """The caller's openid lock (:func:`_lock_openid`)."""
    return _lock_openid(svc, caller.openid, wait_s)


def _lock_openid(svc: Services, openid: str, wait_s: float) -> AbstractContextManager[None]:
    """The per-openid lock. The lease outlives what one holder can do: the IDaaS call, a JWKS
    fetch (each under one overall deadline of connect + read) and a few Redis calls; a lease
    lost anyway is logged and counted (``bff_lock_leases_lost_total``)."""
    upstream = svc.settings.idaas_connect_timeout_s + svc.settings.idaas_read_timeout_s
    return svc.store.openid_lock(openid, lease_s=2 * upstream + 15.0, wait_s=wait_s)


def new_handle() -> tuple[str, str]:
    """A fresh opaque handle (256 bits from ``secrets``) and its SHA-256, the only form stored."""
    handle = secrets.token_urlsafe(32)
    return handle, handle_digest(handle)


def handle_digest(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def _limit(
    svc: Services, route: str, limits: RateLimits, ip: str | None, openid: str | None
) -> None:
    """Count one request per client IP (and per openid when known). Fails OPEN when Redis is
    down: a limiter outage must not stop sign-ins (the session write still fails closed)."""
    scopes = [("ip", ip or "unknown")]
    if openid is not None:
        scopes.append(("openid", openid))
    svc.limiter.check(route, scopes, limits, fail_open=True)


def _limit_session(svc: Services, caller: Caller) -> None:
    """Refresh, session status and logout share one budget per openid (fails open)."""
    svc.limiter.check(
        "session", [("openid", caller.openid)], svc.settings.rate_limit_session, fail_open=True
    )


def open_wechat_session(svc: Services, wx_code: str, ip: str | None) -> dict[str, Any]:
    """code2Session → a new opaque handle; only its SHA-256 is stored."""
    assert svc.wechat is not None  # the web layer answers 404 in gateway mode  # noqa: S101
    _limit(svc, "wechat_session", svc.settings.rate_limit_login, ip, None)
    who = svc.wechat.code2session(wx_code)
    note_openid(svc.openid_hash_key, who.openid)
    # Per openid too, now that we know it; the per-IP count came before the call.
    svc.limiter.check(
        "wechat_session", [("openid", who.openid)], svc.settings.rate_limit_login, fail_open=True
    )
    handle, digest = new_handle()
    svc.store.save_handle(digest, who)
    note_outcome("HANDLE_ISSUED")
    return {"handle": handle, "expires_in": svc.settings.handle_ttl_s}


def login(svc: Services, caller: Caller, code: str, device: Device) -> dict[str, Any]:
    """A WeChat login with a fresh wx.login code."""
    return _login(svc, caller, device, lambda: svc.idaas.login(code, device))


def login_with_phone(
    svc: Services, caller: Caller, phone_code: str, device: Device
) -> dict[str, Any]:
    """A login with the WeChat phone-number button's code; one budget with :func:`login`."""
    return _login(svc, caller, device, lambda: svc.idaas.login_with_phone(phone_code, device))


def _login(
    svc: Services, caller: Caller, device: Device, call: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    _limit(svc, "login", svc.settings.rate_limit_login, device.ip, caller.openid)
    with _openid_lock(svc, caller, SPEND_WAIT_S):  # the outcome is settled under the lock
        return _settle(svc, caller, call(), spent_pending=False)


def bind(
    svc: Services, caller: Caller, route: str, body: dict[str, Any], device: Device
) -> dict[str, Any]:
    """Spend the pending state token on the IDaaS ``route``; one request per openid at a time."""
    # Counted per openid, per IP and per IDaaS account named (so that nobody can lock someone
    # else's account through bff), before the IDaaS call. Fails CLOSED: a bind is a password
    # guess, and a Redis too slow to count it must not let guesses through unlimited.
    scopes = [("ip", device.ip or "unknown"), ("openid", caller.openid)]
    named = body.get("user_name") or body.get("mobile") or body.get("email")
    if isinstance(named, str):
        scopes.append(("account", account_key(svc.openid_hash_key, named)))
    svc.limiter.check("bind", scopes, svc.settings.rate_limit_bind, fail_open=False)
    with _openid_lock(svc, caller, SPEND_WAIT_S):
        pending = svc.store.load_pending(caller.openid)  # re-read under the lock
        if pending is None:
            raise NoPendingBind()
        try:
            answer = svc.idaas.bind(route, body, pending.state_token, device)
        except IdaasError as exc:
            audit.info("bind failed", extra={"route": route, "error_code": exc.code})
            if exc.suffix in STATE_TOKEN_GONE:
                svc.store.delete_pending(caller.openid, pending.state_token)
                raise NoPendingBind() from None
            raise  # wrong password, locked, ...: the pending bind stays for a retry
        outcome = _settle(svc, caller, answer, spent_pending=True)
        audit.info("bind answered", extra={"route": route, "status": outcome["status"]})
        return outcome


def _settle(
    svc: Services, caller: Caller, answer: dict[str, Any], *, spent_pending: bool
) -> dict[str, Any]:
    """Store what the IDaaS handed us and trim the answer for the mini program.

    A session_token is cached (SUCCESS, or any status that brings one); a state_token is kept
    as the pending step; each independently of the other. Nothing leaves but the trimmed answer.
    """
    status = answer.get("status")
    state_token = answer.get("state_token")
    if not status or (status in BIND_STATUSES and not state_token):
        raise bad_response()  # a bind flow without its state token is unusable
    outcome: dict[str, Any] = {"status": status}
    if status == "SUCCESS" or answer.get("session_token"):
        outcome.update(_cache_session(svc, caller, answer, status))
    if state_token:
        svc.store.save_pending(caller.openid, PendingBind(state_token, status))
    elif spent_pending and "expire" not in outcome:
        svc.store.delete_pending(caller.openid)  # a 200 without a new step spent the old one
    if status in BIND_STATUSES:
        outcome["flows"] = answer["flows"]
    LOGIN_OUTCOMES.labels(status if status in KNOWN_STATUSES else "OTHER").inc()
    note_outcome(status)
    return outcome


def _cache_session(
    svc: Services, caller: Caller, answer: dict[str, Any], status: str
) -> dict[str, Any]:
    """Verify the id_token (required on SUCCESS), then cache the session: fail closed."""
    token, expire, id_token = (
        answer.get("session_token"),
        answer.get("expire"),
        answer.get("id_token"),
    )
    if not (token and expire) or (status == "SUCCESS" and not id_token):
        raise bad_response()
    subject = svc.verifier.verify(id_token).subject if id_token else None  # before storing
    session = CachedSession(token, _now() + expire, caller.unionid, subject)
    previous = svc.store.save_session(caller.openid, session, expire)  # drops the pending bind
    if previous is not None and subject is not None and previous != subject:
        # One WeChat account, now another IDaaS user: legitimate after a re-bind, or a code
        # of someone else's replayed under this caller's handle. Worth a look, never silent.
        audit.warning("IDaaS subject changed for this WeChat account", extra={"status": status})
    out: dict[str, Any] = {"expire": expire}
    if id_token:
        out["id_token"] = id_token
    return out


def refresh(svc: Services, caller: Caller, device: Device) -> dict[str, Any]:
    """A fresh id_token from the cached session token; a rotated session token replaces it.

    Under the openid lock: two refreshes racing over a rotating token would otherwise send the
    old token second, get "expired", and log the user out.
    """
    _limit_session(svc, caller)
    with _openid_lock(svc, caller, NO_WAIT):
        session = svc.store.load_session(caller.openid)
        if session is None:
            raise SessionExpired()
        try:
            answer = svc.idaas.refresh(session.session_token, device)
        except IdaasError as exc:
            if exc.suffix in SESSION_TOKEN_GONE:
                svc.store.delete_session(caller.openid)
                raise SessionExpired() from None
            raise
        if not answer.get("id_token"):
            raise bad_response()
        verified = svc.verifier.verify(answer["id_token"])
        token = answer.get("session_token") or session.session_token
        expire = answer.get("expire")
        if token != session.session_token or expire:  # rotated, or its life extended
            ttl = expire or max(1, session.expire_at - _now())
            renewed = CachedSession(token, _now() + ttl, session.unionid, verified.subject)
            svc.store.replace_session(caller.openid, renewed, ttl)
    note_outcome("REFRESHED")
    return {"id_token": answer["id_token"], "expires_in": max(0, verified.exp - _now())}


def session_status(svc: Services, caller: Caller) -> dict[str, Any]:
    _limit_session(svc, caller)
    session = svc.store.load_session(caller.openid)
    remaining = session.expire_at - _now() if session else 0
    if session is None or remaining <= 0:
        return {"active": False}
    return {"active": True, "expires_in": remaining}


def logout(svc: Services, caller: Caller) -> None:
    """Forget the session, the pending bind and every handle of the user (the IdP offers no
    revocation: its session token simply expires, held by no one)."""
    _limit_session(svc, caller)
    revoke(svc, caller.openid, caller.handle_sha256)
    note_outcome("LOGGED_OUT")


def revoke(svc: Services, openid: str, handle_sha256: str | None = None) -> None:
    """End what bff keeps for ``openid``: the session, the pending bind and every handle (logout,
    and ``bff-admin session revoke``, which knows no handle).

    Under the openid lock, so a login or bind in flight cannot write the session back after;
    it does not wait for it (409 ``BFF.REQUEST_IN_PROGRESS``, retry).
    """
    with _lock_openid(svc, openid, NO_WAIT):
        svc.store.forget(openid, handle_sha256)


def captcha(svc: Services, caller: Caller, device: Device) -> dict[str, Any]:
    """A slider puzzle for ``verification_codes``, null fields left out."""
    _limit(svc, "captcha", svc.settings.rate_limit_login, device.ip, caller.openid)
    puzzle = svc.idaas.captcha(device)
    note_outcome("CAPTCHA_ISSUED")
    return {k: v for k, v in puzzle.items() if v is not None}


def readiness(svc: Services) -> dict[str, str]:
    """Each dependency's state: ``ok`` or ``unavailable`` (only Redis is checked)."""
    try:
        svc.store.ping()
    except SessionStoreUnavailable:
        return {"redis": "unavailable"}
    return {"redis": "ok"}
