"""The cached session: a fresh id_token from it, whether it is alive, logout, revoke."""

from __future__ import annotations

from typing import Any

from bff.errors import SESSION_TOKEN_GONE, IdaasError, SessionExpired, bad_response
from bff.flows.common import NO_WAIT, Limit, begin, now
from bff.models import CachedSession, Caller, Device
from bff.observability import note_outcome
from bff.services import Services


def _session_limit(svc: Services, caller: Caller) -> Limit:
    """Refresh, session status and logout share one budget per openid (fails open)."""
    return ("session", svc.settings.rate_limit_session, [("openid", caller.openid)])


def refresh(svc: Services, caller: Caller, device: Device) -> dict[str, Any]:
    """A fresh id_token from the cached session token; a rotated session token replaces it.

    Under the openid lock: two refreshes racing over a rotating token would otherwise send the
    old token second, get "expired", and log the user out.
    """
    limit, reads = _session_limit(svc, caller), frozenset({"session"})
    with begin(svc, caller.openid, limit, fail_open=True, wait_s=NO_WAIT, reads=reads) as step:
        session = step.session
        if session is None:
            raise SessionExpired()
        try:
            answer = svc.idaas.refresh(session.session_token, device)
        except IdaasError as exc:
            if exc.suffix in SESSION_TOKEN_GONE:
                step.delete_session()
                step.commit()
                raise SessionExpired() from None
            raise
        if not answer.get("id_token"):
            raise bad_response()
        verified = svc.verifier.verify(answer["id_token"])
        token = answer.get("session_token") or session.session_token
        expire = answer.get("expire")
        if token != session.session_token or expire:  # rotated, or its life extended
            ttl = expire or max(1, session.expire_at - now())
            renewed = CachedSession(token, now() + ttl, session.unionid, verified.subject)
            step.replace_session(renewed, ttl)
        step.commit()
    note_outcome("REFRESHED")
    return {"id_token": answer["id_token"], "expires_in": max(0, verified.exp - now())}


def session_status(svc: Services, caller: Caller) -> dict[str, Any]:
    """Whether the cached session is alive (Redis only: one round trip)."""
    limit, reads = _session_limit(svc, caller), frozenset({"session"})
    with begin(svc, caller.openid, limit, fail_open=True, wait_s=None, reads=reads) as step:
        session = step.session
    remaining = session.expire_at - now() if session else 0
    if session is None or remaining <= 0:
        return {"active": False}
    return {"active": True, "expires_in": remaining}


def logout(svc: Services, caller: Caller) -> None:
    """Forget the session, the pending bind and every handle of the user (the IdP offers no
    revocation: its session token simply expires, held by no one)."""
    _forget(svc, caller.openid, caller.handle_sha256, _session_limit(svc, caller))
    note_outcome("LOGGED_OUT")


def revoke(svc: Services, openid: str, handle_sha256: str | None = None) -> None:
    """What logout does, for ``bff-admin session revoke`` (which knows no handle): the session,
    the pending bind and every handle of ``openid`` end."""
    _forget(svc, openid, handle_sha256, ("revoke", {}, []))


def _forget(
    svc: Services,
    openid: str,
    handle_sha256: str | None,
    limit: Limit,
) -> None:
    """Under the openid lock, so a login or bind in flight cannot write the session back after;
    it does not wait for it (409 ``BFF.REQUEST_IN_PROGRESS``, retry). Two round trips: limit +
    lock + the handle index; every key deleted + release."""
    reads = frozenset({"handles"})
    with begin(svc, openid, limit, fail_open=True, wait_s=NO_WAIT, reads=reads) as step:
        step.forget(handle_sha256)
        step.commit()
