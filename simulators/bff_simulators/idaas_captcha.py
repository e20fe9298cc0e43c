"""IDaaS simulator: slider captcha and verification-code sending.

An MFA code (`type` MFA_AUTH_SMS [doc], or MFA_AUTH_EMS [doc, EIAM]; marks as in idaas_steps.py)
also wants the `X-state-token` of a pending MFA_AUTH step; `mobile` (`email`) is the user's, in
clear or masked as mobile-by-token shows it; the code goes to the user's real one, where
idaas_steps.py looks for it.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time

from ._idaas_core import IdaasCore, RouteTable
from ._idaas_models import OneTime, SentCode
from ._idaas_steps import second_factor, step_state
from ._server import RecordedRequest, Response, json_response

SMS_TYPES = frozenset({"BIND_MOBILE_SMS", "REGISTER_SMS", "MFA_AUTH_SMS"})
EMAIL_TYPES = frozenset({"BIND_EMAIL_EMS", "REGISTER_EMS", "MFA_AUTH_EMS"})
MFA_CODE_TYPES = frozenset({"MFA_AUTH_SMS", "MFA_AUTH_EMS"})
MOBILE_RE = re.compile(r"^\+\d{1,4}-\d{5,15}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
POINT_TOLERANCE = 5.0
_FAKE_IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n-simulated-captcha-image-").decode()


def captcha(sim: IdaasCore, req: RecordedRequest) -> Response:
    """GET /api/v2/sdk/captcha: a new slider puzzle; the answer goes to `captcha_answers`."""
    sim.check_common(req, needs_body=False)
    token = secrets.token_urlsafe(24)
    x = 40 + secrets.randbelow(240)
    answer = json.dumps({"x": float(x), "y": 5.0}, separators=(",", ":"))
    with sim.lock:
        sim.captcha_answers[token] = answer
    return json_response(
        {
            "token": token,
            "secretKey": secrets.token_urlsafe(12)[:16],
            "originalImageBase64": _FAKE_IMAGE,
            "jigsawImageBase64": _FAKE_IMAGE,
            "wordList": None,
            "pointList": None,
            "result": None,
        }
    )


def _point_x(point_json: str) -> float | None:
    try:
        point = json.loads(point_json)
    except ValueError:
        return None
    x = point.get("x") if isinstance(point, dict) else None
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x)


def captcha_verify(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/captcha/verify {"point_json", "token", "sender"}: a captcha_token."""
    body = sim.check_common(req)
    point_json, token, sender = sim.require(body, "point_json", "token", "sender")
    with sim.lock:
        answer = sim.captcha_answers.pop(token, None)  # spent whatever the outcome
    given, expected = _point_x(point_json), _point_x(answer or "")
    if given is None or expected is None or abs(given - expected) > POINT_TOLERANCE:
        raise sim.error("CAPTCHA.0002", "captcha verification failed")
    captcha_token = secrets.token_urlsafe(24)
    with sim.lock:
        sim.captcha_tokens[captcha_token] = OneTime(
            sender, time.monotonic() + sim.captcha_token_ttl_s
        )
    return json_response({"captcha_token": captcha_token})


def _recipient(
    sim: IdaasCore,
    req: RecordedRequest,
    field: str,
    kind: str,
    given: str,
    pattern: re.Pattern[str],
) -> str:
    """Where the code goes: `given`, or for an MFA code the MFA_AUTH user's real one."""
    if kind in MFA_CODE_TYPES:
        _, state = step_state(sim, req, "MFA_AUTH")
        return second_factor(sim, state, field, given)
    if not pattern.match(given):
        raise sim.error("PARAM.0001", f"invalid {field}")
    return given


def _send(
    sim: IdaasCore,
    req: RecordedRequest,
    field: str,
    types: frozenset[str],
    pattern: re.Pattern[str],
) -> Response:
    body = sim.check_common(req)
    given, kind, captcha_token = sim.require(body, field, "type", "captcha_token")
    if kind not in types:
        raise sim.error("PARAM.0001", "invalid type")
    to = _recipient(sim, req, field, kind, given, pattern)
    with sim.lock:
        entry = sim.captcha_tokens.get(captcha_token)
        spent = entry is None or entry.used or time.monotonic() >= entry.expires_at
        if spent or entry is None or entry.value not in (given, to):
            raise sim.error("CAPTCHA.0006", "invalid captcha token")
        entry.used = True
        code = f"{secrets.randbelow(1_000_000):06d}"
        channel = "sms" if field == "mobile" else "email"
        sim.inbox.append(SentCode(channel, to, kind, code, time.time()))
    return Response(200, b"", None)


def sms_send(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/sms/send {"mobile", "type", "captcha_token"}: empty 200."""
    return _send(sim, req, "mobile", SMS_TYPES, MOBILE_RE)


def email_send(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/email/send {"email", "type", "captcha_token"}: empty 200."""
    return _send(sim, req, "email", EMAIL_TYPES, EMAIL_RE)


CAPTCHA_ROUTES: RouteTable = [
    ("GET", "/api/v2/sdk/captcha", captcha),
    ("POST", "/api/v2/sdk/captcha/verify", captcha_verify),
    ("POST", "/api/v2/sdk/sms/send", sms_send),
    ("POST", "/api/v2/sdk/email/send", email_send),
]
