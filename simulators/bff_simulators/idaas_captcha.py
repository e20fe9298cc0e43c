"""IDaaS simulator: slider captcha and verification-code sending."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time

from ._idaas_core import IdaasCore, RouteTable
from ._idaas_models import OneTime, SentCode
from ._server import RecordedRequest, Response, json_response

SMS_TYPES = frozenset({"BIND_MOBILE_SMS", "REGISTER_SMS"})
EMAIL_TYPES = frozenset({"BIND_EMAIL_EMS", "REGISTER_EMS"})
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


def _send(
    sim: IdaasCore,
    req: RecordedRequest,
    field: str,
    types: frozenset[str],
    pattern: re.Pattern[str],
) -> Response:
    body = sim.check_common(req)
    to, kind, captcha_token = sim.require(body, field, "type", "captcha_token")
    if kind not in types:
        raise sim.error("PARAM.0001", "invalid type")
    if not pattern.match(to):
        raise sim.error("PARAM.0001", f"invalid {field}")
    with sim.lock:
        entry = sim.captcha_tokens.get(captcha_token)
        if entry is None or entry.used or entry.value != to or time.monotonic() >= entry.expires_at:
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
