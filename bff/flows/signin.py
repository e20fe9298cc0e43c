"""Signing in: a handle for a wx.login code, login, and every bind or register route.

A login or a bind is two Redis round trips: limits, lock and reads; then writes and release.
Tokens stop here: the session_token and state_token go to the store, never to an outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bff.errors import STATE_TOKEN_GONE, IdaasError, NoPendingBind, bad_response
from bff.flows.common import (
    BIND_STATUSES,
    KNOWN_STATUSES,
    SPEND_WAIT_S,
    audit,
    begin,
    caller_scopes,
    count,
    new_handle,
    now,
)
from bff.models import CachedSession, Caller, Device, PendingBind
from bff.observability import LOGIN_OUTCOMES, note_openid, note_outcome
from bff.ratelimit import account_key
from bff.services import Services
from bff.session_store import Step


def open_wechat_session(svc: Services, wx_code: str, ip: str | None) -> dict[str, Any]:
    """code2Session → a new opaque handle; only its SHA-256 is stored."""
    assert svc.wechat is not None  # the web layer answers 404 in gateway mode  # noqa: S101
    limits = svc.settings.rate_limit_login
    count(svc, "wechat_session", limits, caller_scopes(ip, None), fail_open=True)
    who = svc.wechat.code2session(wx_code)
    note_openid(svc.openid_hash_key, who.openid)
    # Per openid too, now that we know it; the per-IP count came before the call.
    count(svc, "wechat_session", limits, [("openid", who.openid)], fail_open=True)
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
    """Two round trips: limits + lock; the IDaaS; the outcome settled + release."""
    limit = ("login", svc.settings.rate_limit_login, caller_scopes(device.ip, caller.openid))
    with begin(svc, caller.openid, limit, fail_open=True, wait_s=SPEND_WAIT_S) as step:
        return _settle(svc, step, caller, call(), spent_pending=False)


def bind(
    svc: Services, caller: Caller, route: str, body: dict[str, Any], device: Device
) -> dict[str, Any]:
    """Spend the pending state token on the IDaaS ``route``; one request per openid at a time.

    Two round trips: limits + lock + the pending bind; the IDaaS; the outcome + release.
    """
    # Counted per openid, per IP and per IDaaS account named (so that nobody can lock someone
    # else's account through bff), before the IDaaS call. Fails CLOSED: a bind is a password
    # guess, and a Redis too slow to count it must not let guesses through unlimited.
    scopes = caller_scopes(device.ip, caller.openid)
    named = body.get("user_name") or body.get("mobile") or body.get("email")
    if isinstance(named, str):
        scopes.append(("account", account_key(svc.openid_hash_key, named)))
    limit = ("bind", svc.settings.rate_limit_bind, scopes)
    reads = frozenset({"pending"})
    with begin(
        svc, caller.openid, limit, fail_open=False, wait_s=SPEND_WAIT_S, reads=reads
    ) as step:
        pending = step.pending  # read under the lock
        if pending is None:
            raise NoPendingBind()
        try:
            answer = svc.idaas.bind(route, body, pending.state_token, device)
        except IdaasError as exc:
            audit.info("bind failed", extra={"route": route, "error_code": exc.code})
            if exc.suffix in STATE_TOKEN_GONE:
                step.delete_pending(pending.state_token)
                step.commit()
                raise NoPendingBind() from None
            raise  # wrong password, locked, ...: the pending bind stays for a retry
        outcome = _settle(svc, step, caller, answer, spent_pending=True)
        audit.info("bind answered", extra={"route": route, "status": outcome["status"]})
        return outcome


def _settle(
    svc: Services, step: Step, caller: Caller, answer: dict[str, Any], *, spent_pending: bool
) -> dict[str, Any]:
    """Store what the IDaaS handed us (the step's commit) and trim the answer.

    A session_token is cached (SUCCESS, or any status that brings one); a state_token is kept
    as the pending step; each independently of the other. Nothing leaves but the trimmed answer,
    and only once Redis kept what it must (fail closed).
    """
    status = answer.get("status")
    state_token = answer.get("state_token")
    if not status or (status in BIND_STATUSES and not state_token):
        raise bad_response()  # a bind flow without its state token is unusable
    outcome: dict[str, Any] = {"status": status}
    subject = None
    if status == "SUCCESS" or answer.get("session_token"):
        subject = _cache_session(svc, step, caller, answer, status, outcome)
    if state_token:
        step.save_pending(PendingBind(state_token, status))
    elif spent_pending and "expire" not in outcome:
        step.delete_pending()  # a 200 without a new step spent the old one
    step.commit()
    if step.previous_subject is not None and subject is not None:
        if step.previous_subject != subject:
            # One WeChat account, now another IDaaS user: legitimate after a re-bind, or a code
            # of someone else's replayed under this caller's handle. Worth a look, never silent.
            audit.warning("IDaaS subject changed for this WeChat account", extra={"status": status})
    if status in BIND_STATUSES:
        outcome["flows"] = answer["flows"]
    LOGIN_OUTCOMES.labels(status if status in KNOWN_STATUSES else "OTHER").inc()
    note_outcome(status)
    return outcome


def _cache_session(
    svc: Services,
    step: Step,
    caller: Caller,
    answer: dict[str, Any],
    status: str,
    outcome: dict[str, Any],
) -> str | None:
    """Verify the id_token (required on SUCCESS), then queue the session for the commit.

    :returns: the id_token's subject.
    """
    token, expire, id_token = (
        answer.get("session_token"),
        answer.get("expire"),
        answer.get("id_token"),
    )
    if not (token and expire) or (status == "SUCCESS" and not id_token):
        raise bad_response()
    subject = svc.verifier.verify(id_token).subject if id_token else None  # before storing
    step.save_session(CachedSession(token, now() + expire, caller.unionid, subject), expire)
    outcome["expire"] = expire
    if id_token:
        outcome["id_token"] = id_token
    return subject
