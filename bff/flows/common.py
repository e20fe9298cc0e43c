"""What the flows share: who a request is counted as, handles, lock waits, the audit log."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from typing import Any

from bff.apps import DEFAULT_APP
from bff.audit import audit
from bff.limits import Scope
from bff.models import Caller, Device
from bff.observability import hash_openid
from bff.services import Services

audit_log = logging.getLogger("bff.audit")

KNOWN_STATUSES = {
    "SUCCESS",
    "SOCIAL_BIND",
    "USER_REGISTER",
    "MFA_AUTH",
    "ACCESS_DENIED",
    "PASSWORD_WARN",
    "PASSWORD_EXPIRED",
}
# How long a request waits for another request of the same user to release the openid lock:
# login and bind about a second (a double tap), refresh and logout not at all. Either way the
# answer is then 409 BFF.REQUEST_IN_PROGRESS with Retry-After: no worker waits on one user.
SPEND_WAIT_S = 1.0
NO_WAIT = 0.0


def now() -> int:
    return int(time.time())


def new_handle(app: str) -> tuple[str, str]:
    """A fresh opaque handle (256 bits from ``secrets``; after ``{app}.`` for any app but the
    default one, so that it names its app) and its SHA-256, the only form stored."""
    token = secrets.token_urlsafe(32)
    handle = token if app == DEFAULT_APP else f"{app}.{token}"
    return handle, handle_digest(handle)


def handle_digest(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def client_ip(device: Device) -> str:
    """The caller's IP as a limit scope (``unknown`` when none could be established)."""
    return device.ip or "unknown"


def per_caller(caller: Caller, device: Device) -> dict[Scope, str]:
    """Counted per openid and per client IP."""
    return {Scope.IP: client_ip(device), Scope.OPENID: caller.openid}


def audit_event(
    svc: Services,
    event: str,
    result: str,
    *,
    subject: str | None = None,
    openid: str | None = None,
    held: bool = False,
    **detail: Any,
) -> None:
    """An audit record of ``svc``'s app (bff/audit.py): logged, and streamed when configured.
    The IDaaS subject goes in hashed like the openid (a tenant's may be an e-mail address);
    ``openid``: whom it is about, where that is not the request's caller (then in ``svc``'s app,
    whatever app the request is of); ``held``: an event the request's next write keeps (its log
    line waits for it: :func:`bff.audit.audit`)."""
    subject_hash = hash_openid(svc.openid_hash_key, subject) if subject else None
    app: str | None = None
    openid_hash: str | None = None
    if openid:
        app, openid_hash = svc.app.name, hash_openid(svc.openid_hash_key, openid)
    audit(
        event,
        result,
        svc.store.audit_stream,
        subject_hash=subject_hash,
        app=app,
        openid_hash=openid_hash,
        held=held,
        **detail,
    )
