"""Forward-auth: who holds this handle, for the gateway in front of the company's APIs.

The hot path is one Redis round trip (:meth:`HandleStore.authenticate`: the handle, its user's
session with the id_token bff verified last) and no IDaaS call. A token within
:data:`RENEW_BEFORE_S` of its ``exp`` is renewed, once per user across workers and instances:
the renewal holds the user's lock, and while it does, every other check of that user serves the
token it read (still valid), or, when that one has run out, waits for the renewal (the lock,
up to :data:`WAIT_FOR_RENEWAL_S`) and serves what it wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bff.errors import (
    BffError,
    RequestInProgress,
    SessionExpired,
    SessionRevoked,
    SessionStoreUnavailable,
    Unauthenticated,
)
from bff.flows.common import NO_WAIT, now
from bff.flows.session import id_token_left, renew
from bff.models import CachedSession, Device, HandleRecord
from bff.services import Services

RENEW_BEFORE_S = 60  # a token closer than this to its exp is renewed
WAIT_FOR_RENEWAL_S = 3.0  # a check whose token ran out waits this long for another's renewal


@dataclass(frozen=True)
class Identity:
    """What the gateway passes upstream about the caller."""

    openid: str
    unionid: str | None
    subject: str | None  # the IDaaS user (the id_token's sub)
    app: str
    id_token: str = field(repr=False)
    id_token_exp: int


def forward_auth(svc: Services, digest: str, device: Callable[[], Device]) -> Identity:
    """The identity of the handle whose SHA-256 is ``digest``; ``device`` reads the device
    headers the gateway passed on, called only when the id_token must be renewed (a check
    with a fresh token reads nothing it does not need).

    :raises Unauthenticated: unknown handle. :raises SessionRevoked: a handle ended on purpose.
    :raises SessionExpired: no signed-in session (or the IDaaS no longer knows it).
    :raises RequestInProgress: the token ran out and another check's renewal took too long.
    """
    record, session, revoked = svc.store.handles.authenticate(digest)
    if record is None:
        if revoked:
            raise SessionRevoked()
        raise Unauthenticated(message="unknown or expired handle; open a new WeChat session")
    if session is None or session.expire_at <= now():
        raise SessionExpired()
    if not _fresh(session):
        session = _renewed(svc, record, session, _device(record, device()))
    assert session.id_token and session.id_token_exp  # noqa: S101 (_fresh or _renewed)
    return Identity(
        record.openid,
        session.unionid,
        session.id_token_sub,
        svc.app.name,
        session.id_token,
        session.id_token_exp,
    )


def _fresh(session: CachedSession) -> bool:
    return id_token_left(session) > RENEW_BEFORE_S


def _valid(session: CachedSession) -> bool:
    return id_token_left(session) > 0


def _renewed(
    svc: Services, record: HandleRecord, seen: CachedSession, device: Device
) -> CachedSession:
    """A fresh id_token, single-flight: the lock's holder renews; the others serve ``seen``
    while it is valid, else wait for the holder and serve what it wrote."""
    wait_s = NO_WAIT if _valid(seen) else WAIT_FOR_RENEWAL_S
    try:
        with svc.store.lock(record.openid, None, wait_s=wait_s, read=(CachedSession,)) as user:
            session = user.get(CachedSession)
            if session is None:
                raise SessionExpired()
            if _fresh(session):  # renewed by another check while this one waited
                return session
            try:
                renewed = renew(svc, user, session, device)
            except (SessionExpired, SessionStoreUnavailable):  # the session is gone (dropped
                raise  # by renew), or Redis failed as it dropped it: never served (fail closed)
            except BffError:  # down, throttling, answering nonsense: the token it gave is good
                if _valid(session):
                    return session
                raise
            user.commit()
            return renewed
    except RequestInProgress:
        if _valid(seen):
            return seen
        raise


def _device(record: HandleRecord, sent: Device) -> Device:
    """The device headers for the IDaaS's refresh: the ones the gateway passed on, else the
    ones the handle was opened with (a gateway need not forward them to the check)."""
    return Device(
        sent.os_version or record.device_os,
        sent.fingerprint or record.fingerprint,
        sent.agent or record.agent,
        sent.lang,
        sent.ip,
    )
