"""The login, bind and session flows: IDaaS answers in, trimmed outcomes out (SPEC §2, §12).

Tokens stop here: the session_token and state_token go to the SessionStore, never to a response.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from bff.clients._http import BAD
from bff.clients.idaas import Device, IdaasError
from bff.errors import NoPendingBind, SessionExpired, upstream_error
from bff.identity import Caller, new_handle
from bff.observability import LOGIN_OUTCOMES, note_openid, note_outcome
from bff.services import Services
from bff.session_store import CachedSession, PendingBind

audit = logging.getLogger("bff.audit")

BIND_STATUSES = ("SOCIAL_BIND", "USER_REGISTER")
KNOWN_STATUSES = {"SUCCESS", "MFA_AUTH", "ACCESS_DENIED", "PASSWORD_WARN", "PASSWORD_EXPIRED"}
KNOWN_STATUSES.update(BIND_STATUSES)
# IDaaS answers that mean the state token is spent, invalid or expired (matched by suffix).
STATE_TOKEN_GONE = {"COMMON.1007", "PARAM.0014", "COMMON.1005"}
SESSION_TOKEN_GONE = {"PARAM.0023"}


@dataclass(frozen=True)
class BindRoute:
    """One way to spend the pending state token: an IDaaS path and how to build its body."""

    name: str
    idaas_path: str
    upstream_body: Callable[[dict[str, Any]], dict[str, Any]]


def _now() -> int:
    return int(time.time())


def _openid_lock(svc: Services, caller: Caller) -> AbstractContextManager[None]:
    """The caller's openid lock. The lease outlives what one holder can do: the IDaaS call, a
    JWKS fetch (each bounded by connect + read) and a few Redis calls; a lease lost anyway is
    logged and counted (``bff_lock_leases_lost_total``). The wait covers one holder's call."""
    upstream = svc.settings.idaas_connect_timeout_s + svc.settings.idaas_read_timeout_s
    return svc.store.openid_lock(caller.openid, lease_s=2 * upstream + 15.0, wait_s=upstream + 2.0)


def open_wechat_session(svc: Services, wx_code: str) -> dict[str, Any]:
    """code2Session → a new opaque handle; only its SHA-256 is stored."""
    assert svc.wechat is not None  # the view answers 404 in gateway mode  # noqa: S101
    who = svc.wechat.code2session(wx_code)
    note_openid(who.openid)
    # Per openid too (SPEC §6), now that we know it; the per-IP count came before the call.
    svc.limiter.check(
        "wechat_session", [("openid", who.openid)], svc.settings.rate_limit_login, fail_open=True
    )
    handle, digest = new_handle()
    svc.store.save_handle(digest, who)
    note_outcome("HANDLE_ISSUED")
    return {"handle": handle, "expires_in": svc.settings.handle_ttl_s}


def login(svc: Services, caller: Caller, path: str, code: str, device: Device) -> dict[str, Any]:
    """A WeChat (or phone-number) login; the outcome is settled under the openid lock."""
    with _openid_lock(svc, caller):
        answer = svc.idaas.login(path, code, device)
        return _settle(svc, caller, answer, spent_pending=False)


def bind(
    svc: Services, caller: Caller, route: BindRoute, body: dict[str, Any], device: Device
) -> dict[str, Any]:
    """Spend the pending state token on ``route``; one request per openid at a time."""
    with _openid_lock(svc, caller):
        pending = svc.store.load_pending(caller.openid)  # re-read under the lock
        if pending is None:
            raise NoPendingBind()
        try:
            answer = svc.idaas.bind(
                route.idaas_path, route.upstream_body(body), pending.state_token, device
            )
        except IdaasError as exc:
            audit.info("bind failed", extra={"route": route.name, "error_code": exc.code})
            if exc.suffix in STATE_TOKEN_GONE:
                svc.store.delete_pending(caller.openid, pending.state_token)
                raise NoPendingBind() from None
            raise  # wrong password, locked, ...: the pending bind stays for a retry
        outcome = _settle(svc, caller, answer, spent_pending=True)
        audit.info("bind answered", extra={"route": route.name, "status": outcome["status"]})
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
        raise upstream_error(502, BAD)  # a bind flow without its state token is unusable
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
        raise upstream_error(502, BAD)
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
    with _openid_lock(svc, caller):
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
            raise upstream_error(502, BAD)
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
    session = svc.store.load_session(caller.openid)
    remaining = session.expire_at - _now() if session else 0
    if session is None or remaining <= 0:
        return {"active": False}
    return {"active": True, "expires_in": remaining}


def logout(svc: Services, caller: Caller) -> None:
    """Forget the session, the pending bind and the handle (the IdP offers no revocation).

    Under the openid lock, so a login or bind in flight cannot write the session back after.
    """
    with _openid_lock(svc, caller):
        svc.store.forget(caller.openid, caller.handle_sha256)
    note_outcome("LOGGED_OUT")
