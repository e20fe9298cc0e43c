"""Unbinding WeChat: the caller's WeChat account leaves its IDaaS account, and every session
and handle of the caller ends.

The IDaaS's self-service calls take the user's id_token: the current one, renewed first when it
is (nearly) out of date, all under the openid's lock so that no sign-in of the caller can write
a session back while the binding goes.
"""

from __future__ import annotations

from bff.errors import BffError, NotBound, SessionExpired
from bff.flows.common import NO_WAIT, audit_event, now
from bff.flows.session import id_token_left, renew, session_hits
from bff.models import CachedSession, Caller, Device, HandleIndex
from bff.observability import note_outcome
from bff.services import Services

FRESH_FOR_S = 30  # an id_token with less left than this is renewed before the calls


def unbind_wechat(svc: Services, caller: Caller, device: Device) -> int:
    """Unbind the caller's WeChat account (each social record of its openid for this app's
    client) and end the caller's session, pending step and every handle (each answers
    ``BFF.SESSION_REVOKED`` from now on).

    :returns: how many social records the IDaaS unbound.
    :raises SessionExpired: no signed-in session (the id_token is needed).
    :raises NotBound: the IDaaS lists no binding of this WeChat account.
    """
    hits = session_hits(svc, caller)
    read = (CachedSession, HandleIndex)
    with svc.store.lock(caller.openid, hits, wait_s=NO_WAIT, read=read) as user:
        session = user.get(CachedSession)
        if session is None or session.expire_at <= now():
            raise SessionExpired()
        if id_token_left(session) < FRESH_FOR_S:
            session = renew(svc, user, session, device)
        try:
            unbound = _unbind(svc, caller, session, device)
        except BffError:
            user.commit()  # a renewal's session (its token may be rotated) is kept, not lost
            raise
        user.forget(caller.handle_sha256)
        audit_event(svc, "unbound", "OK", subject=session.id_token_sub, records=unbound, held=True)
        user.commit()
    note_outcome("UNBOUND")
    return unbound


def _unbind(svc: Services, caller: Caller, session: CachedSession, device: Device) -> int:
    """Unbind each social record of the caller's openid for this app's client.

    :raises NotBound: the IDaaS lists none.
    """
    assert session.id_token  # noqa: S101 (a signed-in session has one; renew sets it)
    client_id = svc.app.idaas_client_id
    records = [
        account
        for account in svc.idaas.social_accounts(session.id_token, device)
        if account.social_uid == caller.openid and account.client_id in (None, client_id)
    ]
    if not records:
        raise NotBound()
    for record in records:
        svc.idaas.unbind_social(record.id, session.id_token, device)
    return len(records)
