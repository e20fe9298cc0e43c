"""The cached session: a fresh id_token from it, whether it is alive, logout, revoke."""

from __future__ import annotations

from bff.errors import SESSION_TOKEN_GONE, BffError, IdaasError, SessionExpired, bad_response
from bff.flows.common import NO_WAIT, audit_event, now
from bff.limits import Hits, Scope
from bff.models import CachedSession, Caller, Device, HandleIndex, RefreshedToken
from bff.observability import note_openid, note_outcome
from bff.ratelimit import Route
from bff.services import Services
from bff.session_store import UserState


def session_hits(svc: Services, caller: Caller) -> Hits:
    """Refresh, session status and logout share one budget per openid (fails open)."""
    return svc.limiter.hits(Route.SESSION, {Scope.OPENID: caller.openid}, fail_open=True)


def refresh(svc: Services, caller: Caller, device: Device) -> RefreshedToken:
    """A fresh id_token from the cached session token; a rotated session token replaces it.

    Under the openid lock: two refreshes racing over a rotating token would otherwise send the
    old token second, get "expired", and log the user out.
    """
    hits = session_hits(svc, caller)
    with svc.store.lock(caller.openid, hits, wait_s=NO_WAIT, read=(CachedSession,)) as user:
        session = user.get(CachedSession)
        try:
            if session is None:
                raise SessionExpired()
            renewed = renew(svc, user, session, device)
        except BffError as exc:  # the record rides the release (or renew's commit)
            audit_event(svc, "refresh_failed", exc.code)
            raise
        user.commit()
    note_outcome("REFRESHED")
    assert renewed.id_token and renewed.id_token_exp  # noqa: S101 (renew sets both)
    return RefreshedToken(renewed.id_token, max(0, renewed.id_token_exp - now()))


def renew(svc: Services, user: UserState, session: CachedSession, device: Device) -> CachedSession:
    """Under the user's lock: a fresh id_token for ``session``, queued to replace it (with a
    rotated session token, and the IDaaS's new ``expire`` if it sent one).

    :raises SessionExpired: the IDaaS no longer knows the session token (the session is
        dropped, committed here).
    """
    try:
        answer = svc.idaas.refresh(session.session_token, device)
    except IdaasError as exc:
        if exc.suffix in SESSION_TOKEN_GONE:
            user.delete_session()
            user.commit()
            raise SessionExpired() from None
        raise
    if not answer.id_token:
        raise bad_response()
    verified = svc.verifier.verify(answer.id_token)
    token = answer.session_token or session.session_token
    expire_at = now() + answer.expire if answer.expire else session.expire_at
    renewed = CachedSession(
        token, expire_at, session.unionid, verified.subject, answer.id_token, verified.exp
    )
    user.replace_session(renewed, max(1, expire_at - now()))
    return renewed


def id_token_left(session: CachedSession) -> int:
    """Seconds the session's current id_token has left (0: none, or run out)."""
    return max(0, (session.id_token_exp or 0) - now()) if session.id_token else 0


def session_status(svc: Services, caller: Caller) -> int | None:
    """Seconds the cached session has left, or None when there is none (Redis only: one round
    trip, no lock)."""
    session = svc.store.session(caller.openid, session_hits(svc, caller))
    remaining = session.expire_at - now() if session else 0
    return remaining if remaining > 0 else None


def logout(svc: Services, caller: Caller) -> None:
    """Forget the session, the pending bind and every handle of the user (the IdP offers no
    revocation: its session token simply expires, held by no one)."""
    _forget(svc, caller.openid, caller.handle_sha256, session_hits(svc, caller), "logout")
    note_outcome("LOGGED_OUT")


def revoke(
    svc: Services,
    openid: str,
    handle_sha256: str | None = None,
    why: str = "operator",
    subject: str | None = None,
) -> bool:
    """What logout does, for ``bff-admin session revoke`` and the IdP's events (which know no
    handle, and are not rate-limited): the session, the pending bind and every handle of
    ``openid`` end. ``why``: the audit record's result (``operator``, an IdP event type).

    With ``subject`` (an openid the subject index lists), only while the openid's session may
    still be that IDaaS user's (its subject, or none known: a session cached without an
    id_token): an openid that logged out, or was bound to another account since, keeps what it
    has and just leaves the subject's index.

    :returns: whether anything of the openid ended.
    """
    if subject is None:
        _forget(svc, openid, handle_sha256, None, "revoked", why)
        return True
    with svc.store.lock(openid, None, wait_s=NO_WAIT, read=(HandleIndex, CachedSession)) as user:
        session = user.get(CachedSession)
        user.unlist(subject)
        ended = session is not None and session.id_token_sub in (subject, None)
        if ended:
            _forget_locked(svc, user, openid, handle_sha256, "revoked", why, subject)
        user.commit()
    return ended


def _forget(
    svc: Services,
    openid: str,
    handle_sha256: str | None,
    hits: Hits | None,
    event: str,
    result: str = "OK",
) -> None:
    """Under the openid lock, so a login or bind in flight cannot write the session back after;
    it does not wait for it (409 ``BFF.REQUEST_IN_PROGRESS``, retry). Two round trips: limit +
    lock + the handle index; every key deleted + release."""
    with svc.store.lock(openid, hits, wait_s=NO_WAIT, read=(HandleIndex,)) as user:
        _forget_locked(svc, user, openid, handle_sha256, event, result)
        user.commit()


def _forget_locked(
    svc: Services,
    user: UserState,
    openid: str,
    handle_sha256: str | None,
    event: str,
    result: str,
    subject: str | None = None,
) -> None:
    user.forget(handle_sha256)
    if subject is None:  # the request's own openid (logout, bff-admin revoke OPENID)
        note_openid(svc.openid_hash_key, openid, svc.openid_hash_key_previous)
        audit_event(svc, event, result, held=True)
    else:  # one of a subject's openids: the request is about the subject, not this openid
        audit_event(svc, event, result, subject=subject, openid=openid, held=True)
