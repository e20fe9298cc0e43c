"""Signing in: a handle for a wx.login code, login, and every bind or register route.

A login or a bind is two Redis round trips: the limits, the openid's lock and its reads; then
the writes and the release. Tokens stop here: the session and state tokens go to the store.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from bff.audit import mask_ip
from bff.credentials import BindCredential
from bff.errors import (
    STATE_TOKEN_GONE,
    BffError,
    IdaasError,
    NoPendingBind,
    NoPendingStep,
    bad_response,
)
from bff.flows.common import (
    KNOWN_STATUSES,
    SPEND_WAIT_S,
    audit_event,
    audit_log,
    new_handle,
    now,
    per_caller,
)
from bff.limits import Hits, Scope
from bff.models import (
    BIND_STATUSES,
    PASSWORD_STATUSES,
    CachedSession,
    Caller,
    Device,
    HandleRecord,
    IdaasAnswer,
    Outcome,
    PendingBind,
    WechatSession,
)
from bff.observability import count_outcome, note_openid, note_outcome
from bff.ratelimit import Route, account_key
from bff.services import Services
from bff.session_store import UserState


def open_wechat_session(svc: Services, wx_code: str, device: Device) -> WechatSession:
    """code2Session → a new opaque handle for the device; only its SHA-256 is stored."""
    ip = device.ip
    assert svc.wechat is not None  # the web layer answers 404 in gateway mode  # noqa: S101
    svc.limiter.hit(Route.WECHAT_SESSION, {Scope.IP: ip or "unknown"}, fail_open=True)
    who = svc.wechat.code2session(wx_code)
    note_openid(svc.openid_hash_key, who.openid, svc.openid_hash_key_previous)
    # Per openid too, now that we know it; the per-IP count came before the call.
    svc.limiter.hit(Route.WECHAT_SESSION, {Scope.OPENID: who.openid}, fail_open=True)
    handle, digest = new_handle(svc.app.name)
    record = HandleRecord(
        who.openid,
        who.unionid,
        device_os=device.os_version,
        agent=device.agent,
        fingerprint=device.fingerprint,
        ip=mask_ip(device.ip),
    )
    audit_event(svc, "handle_issued", "OK", held=True)  # rides the handle's write
    svc.store.handles.save(digest, record)
    note_outcome("HANDLE_ISSUED")
    return WechatSession(handle, svc.settings.handle_ttl_s)


def login(svc: Services, caller: Caller, code: str, device: Device) -> Outcome:
    """A WeChat login with a fresh wx.login code."""
    return _login(svc, caller, device, partial(svc.idaas.login, code, device), "login")


def login_with_phone(svc: Services, caller: Caller, phone_code: str, device: Device) -> Outcome:
    """A login with the WeChat phone-number button's code; one budget with :func:`login`."""
    call = partial(svc.idaas.login_with_phone, phone_code, device)
    return _login(svc, caller, device, call, "login/phone")


def _login(
    svc: Services, caller: Caller, device: Device, call: Callable[[], IdaasAnswer], route: str
) -> Outcome:
    hits = svc.limiter.hits(Route.LOGIN, per_caller(caller, device), fail_open=True)
    with svc.store.lock(caller.openid, hits, wait_s=SPEND_WAIT_S) as user:
        try:
            answer = call()
        except BffError as exc:
            audit_event(svc, "signin_failed", exc.code, route=route)  # rides the release
            raise
        return settle(svc, user, caller, answer, route=route)


def bind(svc: Services, caller: Caller, credential: BindCredential, device: Device) -> Outcome:
    """Spend the pending state token on the bind or register route ``credential`` proves.

    Counted per openid, per IP and per IDaaS account named (so that nobody can lock someone
    else's account through bff), before the IDaaS call. Fails CLOSED: a bind is a password
    guess, and a Redis that cannot count it must not let guesses through unlimited.
    """
    who = per_caller(caller, device)
    if credential.account is not None:
        who[Scope.ACCOUNT] = account_key(svc.openid_hash_key, credential.account)
    hits = svc.limiter.hits(Route.BIND, who, fail_open=False)

    def call(pending: PendingBind) -> IdaasAnswer:
        return svc.idaas.bind(credential, pending.state_token, device)

    return spend(svc, caller, hits, BIND_STATUSES, call, credential.route)


def spend(
    svc: Services,
    caller: Caller,
    hits: Hits,
    statuses: tuple[str, ...],
    call: Callable[[PendingBind], IdaasAnswer],
    route: str,
) -> Outcome:
    """Spend the pending state token of a step in ``statuses`` on ``call``, under the openid's
    lock, and settle the answer. A bind (SOCIAL_BIND, USER_REGISTER) missing is
    ``NoPendingBind``; any other step missing, ``NoPendingStep``. A state token the IDaaS
    says is gone is dropped; any other refusal (a wrong password or code) keeps it for a retry."""
    missing = NoPendingBind if statuses == BIND_STATUSES else NoPendingStep
    with svc.store.lock(caller.openid, hits, wait_s=SPEND_WAIT_S, read=(PendingBind,)) as user:
        pending = user.get(PendingBind)  # read under the lock
        if pending is None or pending.status not in statuses:
            raise missing()
        try:
            answer = call(pending)
        except IdaasError as exc:
            audit_event(svc, "signin_failed", exc.code, route=route)  # rides the release
            if exc.suffix in STATE_TOKEN_GONE:
                user.delete_pending(pending)
                user.commit()
                raise missing() from None
            raise  # wrong password, locked, ...: the pending step stays for a retry
        return settle(svc, user, caller, answer, spent=pending, route=route)


def settle(
    svc: Services,
    user: UserState,
    caller: Caller,
    answer: IdaasAnswer,
    *,
    spent: PendingBind | None = None,
    route: str = "login",
) -> Outcome:
    """Keep what the IDaaS handed over (one commit, the outcome's audit record in it) and
    answer it trimmed.

    A session_token is cached (SUCCESS, or any status that brings one); a state_token is kept
    as the pending step; each independently of the other. ``spent``: the pending bind this
    answer spent, dropped unless a new step replaces it. Nothing is answered until Redis kept
    what it must (fail closed).
    """
    status = answer.status
    if not status or (status in BIND_STATUSES and not answer.state_token):
        raise bad_response()  # a bind flow without its state token is unusable
    verified = _verified_session(svc, caller, answer)
    session = verified[0] if verified else None
    if verified is not None:
        user.save_session(*verified)
    policy = answer.policy if status in PASSWORD_STATUSES else None
    if answer.state_token:
        user.save_pending(PendingBind(answer.state_token, status, policy))
    elif spent is not None and session is None:
        user.delete_pending(spent)  # a 200 without a new step spent the old one
    subject = session.id_token_sub if session else None
    audit_event(svc, "signin", status, subject=subject, route=route, held=True)
    user.commit()
    _warn_on_new_subject(user.replaced, session)
    count_outcome(status if status in KNOWN_STATUSES else "OTHER")
    note_outcome(status)
    if session is not None:
        return Outcome(status, answer.expire, answer.id_token, password_policy=policy)
    flows = answer.flows if status in BIND_STATUSES else None
    return Outcome(status, flows=flows, password_policy=policy)


def _verified_session(
    svc: Services, caller: Caller, answer: IdaasAnswer
) -> tuple[CachedSession, int] | None:
    """The session to cache and its TTL, its id_token verified first (required on SUCCESS);
    None when the answer brings none."""
    token, expire, id_token = answer.session_token, answer.expire, answer.id_token
    if answer.status != "SUCCESS" and not token:
        return None
    if not (token and expire) or (answer.status == "SUCCESS" and not id_token):
        raise bad_response()
    verified = svc.verifier.verify(id_token) if id_token else None  # before storing
    subject = verified.subject if verified else None
    kept = (id_token, verified.exp) if verified else (None, None)
    return CachedSession(token, now() + expire, caller.unionid, subject, *kept), expire


def _warn_on_new_subject(replaced: CachedSession | None, session: CachedSession | None) -> None:
    """One WeChat account, now another IDaaS user: legitimate after a re-bind, or a code of
    someone else's replayed under this caller's handle. Worth a look, never silent."""
    before = replaced.id_token_sub if replaced else None
    after = session.id_token_sub if session else None
    if before is not None and after is not None and before != after:
        audit_log.warning("IDaaS subject changed for this WeChat account")
