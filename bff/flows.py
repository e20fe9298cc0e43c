"""The login, bind and session flows: IDaaS answers in, trimmed outcomes out (SPEC §2, §12).

Tokens stop here: the session_token and state_token go to the SessionStore, never to a response.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bff.clients._http import BAD
from bff.clients.idaas import Device, IdaasError
from bff.errors import NoPendingBind, SessionExpired, upstream_error
from bff.identity import Caller, new_handle
from bff.observability import LOGIN_OUTCOMES, note_outcome
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


def _lock_times(svc: Services) -> tuple[float, float]:
    """(lease, wait): the lease outlives one upstream call, so it never expires mid-call."""
    upstream = svc.settings.idaas_connect_timeout_s + svc.settings.idaas_read_timeout_s
    return upstream + 5.0, upstream + 2.0


def open_wechat_session(svc: Services, wx_code: str) -> dict[str, Any]:
    """code2Session → a new opaque handle; only its SHA-256 is stored."""
    assert svc.wechat is not None  # the view answers 404 in gateway mode  # noqa: S101
    who = svc.wechat.code2session(wx_code)
    handle, digest = new_handle()
    svc.store.save_handle(digest, who)
    note_outcome("HANDLE_ISSUED")
    return {"handle": handle, "expires_in": svc.settings.handle_ttl_s}


def login(svc: Services, caller: Caller, path: str, code: str, device: Device) -> dict[str, Any]:
    """A WeChat (or phone-number) login; the outcome is settled under the openid lock."""
    lease, wait = _lock_times(svc)
    with svc.store.openid_lock(caller.openid, lease, wait):
        answer = svc.idaas.login(path, code, device)
        return _settle(svc, caller, answer, spent_pending=False)


def bind(
    svc: Services, caller: Caller, route: BindRoute, body: dict[str, Any], device: Device
) -> dict[str, Any]:
    """Spend the pending state token on ``route``; one request per openid at a time."""
    lease, wait = _lock_times(svc)
    with svc.store.openid_lock(caller.openid, lease, wait):
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
                svc.store.delete_pending(caller.openid)
                raise NoPendingBind() from None
            raise  # wrong password, locked, ...: the pending bind stays for a retry
        outcome = _settle(svc, caller, answer, spent_pending=True)
        audit.info("bind answered", extra={"route": route.name, "status": outcome["status"]})
        return outcome


def _settle(
    svc: Services, caller: Caller, answer: dict[str, Any], *, spent_pending: bool
) -> dict[str, Any]:
    """Store what the IDaaS handed us and trim the answer for the mini program."""
    status = answer.get("status")
    if not status:
        raise upstream_error(502, BAD)
    outcome: dict[str, Any] = {"status": status}
    if status == "SUCCESS" or answer.get("session_token"):
        outcome.update(_cache_session(svc, caller, answer))
    elif answer.get("state_token"):
        svc.store.save_pending(caller.openid, PendingBind(answer["state_token"], status))
    elif status in BIND_STATUSES:
        raise upstream_error(502, BAD)  # a bind flow without its state token is unusable
    elif spent_pending:
        svc.store.delete_pending(caller.openid)  # a 200 without a new step spent the old one
    if status in BIND_STATUSES:
        outcome["flows"] = answer["flows"]
    LOGIN_OUTCOMES.labels(status if status in KNOWN_STATUSES else "OTHER").inc()
    note_outcome(status)
    return outcome


def _cache_session(svc: Services, caller: Caller, answer: dict[str, Any]) -> dict[str, Any]:
    token, expire, id_token = (
        answer.get("session_token"),
        answer.get("expire"),
        answer.get("id_token"),
    )
    if not (token and expire and id_token):
        raise upstream_error(502, BAD)
    verified = svc.verifier.verify(id_token)  # before anything is stored
    session = CachedSession(token, _now() + expire, caller.unionid, verified.subject)
    svc.store.save_session(caller.openid, session, expire)  # fail closed; drops the pending bind
    return {"expire": expire, "id_token": id_token}


def refresh(svc: Services, caller: Caller, device: Device) -> dict[str, Any]:
    """A fresh id_token from the cached session token; a rotated session token replaces it."""
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
    rotated = answer.get("session_token")
    if rotated and rotated != session.session_token:
        ttl = answer.get("expire") or max(1, session.expire_at - _now())
        svc.store.replace_session(
            caller.openid,
            CachedSession(rotated, _now() + ttl, session.unionid, verified.subject),
            ttl,
        )
    note_outcome("REFRESHED")
    return {"id_token": answer["id_token"], "expires_in": max(0, verified.exp - _now())}


def session_status(svc: Services, caller: Caller) -> dict[str, Any]:
    session = svc.store.load_session(caller.openid)
    remaining = session.expire_at - _now() if session else 0
    if session is None or remaining <= 0:
        return {"active": False}
    return {"active": True, "expires_in": remaining}


def logout(svc: Services, caller: Caller) -> None:
    """Forget the session, the pending bind and the handle (the IdP offers no revocation)."""
    svc.store.forget(caller.openid, caller.handle_sha256)
    note_outcome("LOGGED_OUT")
