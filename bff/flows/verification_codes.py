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

import re
from typing import Any

from bff.credentials import CodeRequest
from bff.errors import BadRequest, IdaasError, NoPendingBind
from bff.flows.common import audit_event, client_ip
from bff.limits import Scope
from bff.models import BIND_STATUSES, Caller, Device
from bff.observability import note_outcome
from bff.ratelimit import Route, destination_key
from bff.services import Services

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


def send_verification_code(
    svc: Services, caller: Caller, request: CodeRequest, device: Device
) -> None:
    """Verify the slider and send the code (one IDaaS round trip each); answers nothing.

    :raises NoPendingBind: no bind is pending for the caller (nothing counted or sent).
    :raises RateLimited: over ``RATE_LIMIT_CODES``, with ``Retry-After``.
    :raises SessionStoreUnavailable: Redis is down (fail closed: nothing sent).
    :raises IdaasError: the IDaaS refused the slider (``CAPTCHA.0002``) or the send.
    """
    pending = svc.store.load_pending(caller.openid)  # fail closed too: 503 without Redis
    if pending is None or pending.status not in BIND_STATUSES:
        raise NoPendingBind()  # e.g. an MFA step: no bind to finish, no code to pay for
    if request.purpose == "register" and pending.status != "USER_REGISTER":
        # Only USER_REGISTER offers "create an account": a register code would be paid for and
        # then refused by the IDaaS. Not counted, nothing sent.
        raise BadRequest(
            message="this sign-in offers no registration; use purpose bind",
            errors={"purpose": [f"not offered while the pending step is {pending.status}"]},
        )
    # Fails CLOSED: no Redis to count it, no code sent.
    who = {Scope.OPENID: caller.openid, Scope.IP: client_ip(device)}
    svc.limiter.hit(Route.CODES, who, fail_open=False)
    to = request.to
    where: dict[str, Any] = {
        "channel": request.channel,
        "purpose": request.purpose,
        "to": mask_destination(to),
    }
    try:
        captcha_token = svc.idaas.verify_captcha(
            request.captcha.token, request.captcha.point_json, to, device
        )
        # The destination is counted only once the slider is solved: nobody can spend a
        # victim's per-number budget (and lock them out) without solving sliders.
        svc.limiter.hit(Route.CODES, {Scope.DESTINATION: destination_key(to)}, fail_open=False)
        svc.idaas.send_code(request.channel, request.purpose, to, captcha_token, device)
    except IdaasError as exc:
        audit_event(svc, "code_refused", exc.code, **where)
        raise
    audit_event(svc, "code_sent", "OK", **where)
    note_outcome("CODE_SENT")
