"""The user's devices: the live handles, one ended at a time, and every session of one IDaaS
user (all its openids, in every app) ended at once."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bff.errors import NotFound, RequestInProgress
from bff.flows.common import audit_event
from bff.flows.session import revoke, session_hits
from bff.models import Caller
from bff.observability import note_outcome
from bff.services import Deployment, Services
from bff.session_store.handles import session_id

REVOKE_ATTEMPTS = 20  # an openid whose lock is held (a sign-in in flight) is tried again
REVOKE_RETRY_S = 0.25


@dataclass(frozen=True)
class DeviceSession:
    """One live handle as its user may see it: never the handle, nor its digest."""

    id: str
    issued_at: int
    last_used_at: int
    os: str | None
    agent: str | None
    ip: str | None  # its network
    current: bool


def list_sessions(svc: Services, caller: Caller) -> list[DeviceSession]:
    """The caller's live handles, the oldest first, the caller's own marked ``current``."""
    svc.store.count(session_hits(svc, caller))
    return devices(svc, caller.openid, caller.handle_sha256)


def devices(svc: Services, openid: str, current: str | None = None) -> list[DeviceSession]:
    """``openid``'s live handles, the oldest first (``current``: the digest of the caller's)."""
    return [
        DeviceSession(
            session_id(digest),
            record.issued_at,
            record.last_used,
            record.device_os,
            record.agent,
            record.ip,
            digest == current,
        )
        for digest, record in svc.store.handles.live(openid)
    ]


def end_session(svc: Services, caller: Caller, public_id: str) -> None:
    """End the caller's device named ``public_id`` (their own included): its handle answers
    ``BFF.SESSION_REVOKED`` from now on; the user's session and other devices stay.

    :raises NotFound: no live handle of the caller has that id.
    """
    svc.store.count(session_hits(svc, caller))
    for digest, _ in svc.store.handles.live(caller.openid):
        if session_id(digest) == public_id:
            audit_event(svc, "session_ended", "OK", session=public_id, held=True)  # rides the end
            svc.store.handles.end(caller.openid, digest)
            note_outcome("SESSION_ENDED")
            return
    raise NotFound(message="no session of yours has that id")


def revoke_subject(
    deployment: Deployment, subject: str, why: str = "operator"
) -> list[tuple[str, str]]:
    """End every session of IDaaS user ``subject`` in every app: each openid the subject index
    lists whose session is still that user's is revoked as logout would (after a sign-in of it
    in flight has finished); the others leave the index.

    :returns: ``(app, openid)`` of each openid ended.
    :raises RequestInProgress: an openid stayed locked through every attempt.
    """
    ended = []
    for svc in deployment.apps.values():
        for openid in svc.store.openids_of(subject):
            for attempt in range(REVOKE_ATTEMPTS):
                try:
                    if revoke(svc, openid, why=why, subject=subject):
                        ended.append((svc.app.name, openid))
                    break
                except RequestInProgress:
                    if attempt == REVOKE_ATTEMPTS - 1:
                        raise
                    time.sleep(REVOKE_RETRY_S)
    return ended
