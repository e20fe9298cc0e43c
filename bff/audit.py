"""The audit stream: one structured record per security event, with no Flask.

Every sign-in outcome, failed bind or step, refresh failure, handle issued, logout, device
ended, revocation, WeChat unbind and IdP event is one record::

    {"v": "1", "ts": "1733300000.123", "event": "signin", "result": "SUCCESS",
     "app": "default", "openid_hash": "6db2a6a306046e5c", "subject_hash": "0b21e970abf6aac1",
     "request_id": "…", "ip": "203.0.113.0/24", "route": "bind/username-password"}

``openid_hash`` is the keyed hash of the log lines (never the openid), ``subject_hash`` the same
hash of the IDaaS user where known (a tenant's subject may be an e-mail address or a phone
number; ``bff-admin hash-openid`` computes either), ``ip`` the client's network (never the
address); no token, handle, code, password or key is ever a field. Each record is a line of
the ``bff.audit`` logger, always, and, with ``AUDIT_STREAM_MAXLEN`` set, an entry of the Redis
Stream ``{prefix}:audit`` of its app (``XADD … MAXLEN ~ n``). The entry rides the next pipeline
the request sends (a sign-in's commit or release, a handle's write): no round trip of its own;
what is left when the request ends goes in one pipeline then.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from typing import Any

from bff.observability import NO_APP, current_request

log = logging.getLogger("bff.audit")
SCHEMA = "1"


@dataclass(frozen=True)
class AuditStream:
    """Where an app's records go in Redis: its stream, trimmed to about ``maxlen`` entries."""

    key: str
    maxlen: int


Entry = tuple[AuditStream, dict[str, str]]


def mask_ip(ip: str | None) -> str | None:
    """A client IP as a record or a user's device list may show it: its network,
    ``203.0.113.0/24`` or ``2001:db8:1::/48``, never the address; ``None`` for none."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return None
    bits = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))


def audit(
    event: str,
    result: str,
    stream: AuditStream | None,
    *,
    subject_hash: str | None = None,
    app: str | None = None,
    openid_hash: str | None = None,
    held: bool = False,
    **detail: Any,
) -> None:
    """Record ``event`` with its ``result`` (a status, an error code, ``OK``): the log line now,
    the stream entry queued on the request for its next pipeline. ``app`` and ``openid_hash``:
    whom it is about, where that is not the request's own (an IdP event ending sessions of
    several openids in several apps). ``held``: an event that happens only if the request's
    next write does (a sign-in kept, a handle issued, a logout): its log line waits for that
    write (:func:`log_held`), so that a write that fails leaves no record claiming it."""
    request = current_request()
    fields = {
        "v": SCHEMA,
        "ts": f"{time.time():.3f}",
        "event": event,
        "result": result,
        "app": app or (request.app if request else NO_APP),
        "openid_hash": openid_hash or (request.openid_hash if request else None) or "",
        "subject_hash": subject_hash or "",
        "request_id": request.request_id if request else "",
        "ip": (mask_ip(request.client_ip) if request else None) or "",
    }
    fields.update({name: str(value) for name, value in detail.items() if value is not None})
    shown = {k: v for k, v in fields.items() if k not in ("ts", "app", "openid_hash", "request_id")}
    shown.update({k: v for k, v in (("app", app), ("openid_hash", openid_hash)) if v})
    if held and request is not None:
        request.held.append((event, shown))
    else:
        log.info(event, extra=shown)  # the formatter adds the request's id (and app, openid hash)
    if stream is not None and request is not None:
        request.audit.append((stream, fields))


def log_held() -> None:
    """The held records' log lines, now that the write that keeps their events succeeded."""
    request = current_request()
    if request is not None and request.held:
        held, request.held = request.held, []
        for event, shown in held:
            log.info(event, extra=shown)


def drop_held() -> None:
    """Forget the held records whose write never succeeded (the request failed)."""
    request = current_request()
    if request is not None:
        request.held = []


def take_queued() -> list[Entry]:
    """The request's records not yet sent (and the queue emptied)."""
    request = current_request()
    if request is None or not request.audit:
        return []
    queued, request.audit = request.audit, []
    return queued


def queue_entries(pipe: Any, entries: list[Entry]) -> None:
    """``XADD`` each entry to its stream in ``pipe``, trimmed approximately (``MAXLEN ~``)."""
    for stream, fields in entries:
        pairs = [part for item in fields.items() for part in item]
        pipe.execute_command("XADD", stream.key, "MAXLEN", "~", stream.maxlen, "*", *pairs)
