"""Sending an SMS or e-mail verification code for a pending bind: a flow, like ``bff.flows``.

Every code costs money and is the classic abuse target ("SMS pumping"), so, in this order:

1. the caller must have a pending bind (else ``409 BFF.NO_PENDING_BIND``, nothing counted or sent),
   and ``purpose: register`` only while it is ``USER_REGISTER`` (else ``400 BFF.VALIDATION``);
2. the attempt is counted against ``RATE_LIMIT_CODES`` per openid and per IP **before** the
   slider is checked, so a failed slider spends an attempt too (an attacker cannot probe the
   captcha for free); per destination only **after** the slider passed, so nobody can use up a
   victim's per-number budget without solving sliders. Counting **fails closed** (no Redis: 503,
   nothing sent);
3. the slider is verified at the IDaaS and the code sent with the ``captcha_token`` it returned,
   in the same request: that token never leaves the server.

A request that fails validation (bad body, missing device header) is not counted: it never
reaches the IDaaS. Destinations appear in logs only masked.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from bff.errors import BadRequest, IdaasError, NoPendingBind
from bff.flows.common import BIND_STATUSES
from bff.models import Caller, Device
from bff.observability import note_outcome
from bff.ratelimit import counters, destination_key, enforce
from bff.services import Services

audit = logging.getLogger("bff.audit")

ROUTE = "verification_codes"  # the rate limiter's name for this endpoint
_MOBILE = re.compile(r"^(\+[0-9]{1,4}-)([0-9]+)$")


def mask_destination(to: str) -> str:
    """A phone number or e-mail address as logs may show it.

    ``+86-13800000000`` -> ``+86-138****0000``; ``alice@example.com`` -> ``a***@example.com``.
    Anything else is ``***``: an unrecognised value is never logged.
    """
    mobile = _MOBILE.match(to)
    if mobile:
        country, digits = mobile.groups()
        if len(digits) >= 8:
            return f"{country}{digits[:3]}****{digits[-4:]}"
        return f"{country}****{digits[-2:]}"
    local, at, domain = to.rpartition("@")
    if at and local and domain:
        return (local[0] if len(local) > 1 else "") + "***@" + domain
    return "***"


def _count(svc: Services, scopes: list[tuple[str, str]]) -> None:
    """Count against RATE_LIMIT_CODES; fails CLOSED (no Redis, no code sent)."""
    found = counters(ROUTE, scopes, svc.settings.rate_limit_codes)
    enforce(ROUTE, found, svc.store.count(found), fail_open=False)


def send_verification_code(
    svc: Services, caller: Caller, body: dict[str, Any], device: Device
) -> None:
    """Verify the slider and send the code (one IDaaS round trip each); answers nothing.

    :raises NoPendingBind: no bind is pending for the caller (nothing counted or sent).
    :raises RateLimited: over ``RATE_LIMIT_CODES``, with ``Retry-After``.
    :raises SessionStoreUnavailable: Redis is down (fail closed: nothing sent).
    :raises IdaasError: the IDaaS refused the slider (``CAPTCHA.0002``) or the send.
    """
    channel, to, purpose = body["channel"], body["to"], body["purpose"]
    pending = svc.store.load_pending(caller.openid)  # fail closed too: 503 without Redis
    if pending is None or pending.status not in BIND_STATUSES:
        raise NoPendingBind()  # e.g. an MFA step: no bind to finish, no code to pay for
    if purpose == "register" and pending.status != "USER_REGISTER":
        # Only USER_REGISTER offers "create an account": a register code would be paid for and
        # then refused by the IDaaS. Not counted, nothing sent.
        raise BadRequest(
            message="this sign-in offers no registration; use purpose bind",
            errors={"purpose": [f"not offered while the pending step is {pending.status}"]},
        )
    caller_scopes = [("openid", caller.openid), ("ip", device.ip or "unknown")]
    _count(svc, caller_scopes)
    where = {"channel": channel, "purpose": purpose, "to": mask_destination(to)}
    captcha = body["captcha"]
    try:
        captcha_token = svc.idaas.verify_captcha(
            captcha["token"], captcha["point_json"], to, device
        )
        # The destination is counted only once the slider is solved: nobody can spend a
        # victim's per-number budget (and lock them out) without solving sliders.
        _count(svc, [("destination", destination_key(to))])
        svc.idaas.send_code(channel, purpose, to, captcha_token, device)
    except IdaasError as exc:
        audit.info("verification code refused", extra={**where, "error_code": exc.code})
        raise
    audit.info("verification code sent", extra=where)
    note_outcome("CODE_SENT")
