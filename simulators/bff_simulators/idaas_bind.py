"""IDaaS simulator: phone login and the other bind/register routes."""

from __future__ import annotations

import secrets
import time
from typing import Any

from ._idaas_core import IdaasCore, RouteTable
from ._idaas_models import SentCode, SimUser
from ._server import RecordedRequest, Response

CHANNELS = {"mobile": "sms", "email": "email"}  # body field -> inbox channel
BIND_TYPES = {"mobile": "BIND_MOBILE_SMS", "email": "BIND_EMAIL_EMS"}
REGISTER_TYPES = {"mobile": "REGISTER_SMS", "email": "REGISTER_EMS"}


def _new_user(sim: IdaasCore, field: str, to: str) -> SimUser:
    password = secrets.token_urlsafe(16)
    if field == "mobile":
        return sim.add_user(to, password, mobile=to)
    return sim.add_user(to, password, email=to)


def _find(sim: IdaasCore, field: str, to: str) -> SimUser | None:
    return sim.find_user(mobile=to) if field == "mobile" else sim.find_user(email=to)


def _existing(sim: IdaasCore, field: str, to: str) -> SimUser:
    user = _find(sim, field, to)
    if user is None:
        raise sim.error("LOGIN.1002", "user not found")
    return user


def login_mobile(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/login/wechat-mini-program-mobile {"code"}: log in by phone number."""
    body = sim.check_common(req)
    sim.check_route("login_mobile")
    (code,) = sim.require(body, "code")
    user = _existing(sim, "mobile", sim.redeem_phone_code(code))
    return sim.login_answer(user.user_name, None)


def wechat_mobile_bind(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/social/wechat-mobile-bind {"wechat_code"}: bind the phone's account."""
    body = sim.check_common(req)
    sim.check_route("wechat_mobile_bind")
    token = sim.take_state(req)
    (code,) = sim.require(body, "wechat_code")
    user = _existing(sim, "mobile", sim.redeem_phone_code(code))
    return sim.complete_bind(token, user.user_name)


def wechat_mobile_register_bind(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/social/wechat-mobile-register-bind: bind or create the phone's account."""
    body = sim.check_common(req)
    sim.check_route("wechat_mobile_register_bind", register=True)
    token = sim.take_state(req)
    (code,) = sim.require(body, "wechat_code")
    mobile = sim.redeem_phone_code(code)
    with sim.lock:
        user = _find(sim, "mobile", mobile) or _new_user(sim, "mobile", mobile)
    return sim.complete_bind(token, user.user_name)


def _destination(sim: IdaasCore, body: dict[str, Any]) -> tuple[str, str]:
    present = [name for name in CHANNELS if name in body]
    if len(present) != 1:
        raise sim.error("PARAM.0001", "exactly one of mobile, email is required")
    (to,) = sim.require(body, present[0])
    return present[0], to


def find_sent_code(sim: IdaasCore, field: str, to: str, kind: str, code: str) -> SentCode:
    """The unspent, unexpired code of that kind sent to `to` (SMS.1003: a wrong code)."""
    oldest = time.time() - sim.verify_code_ttl_s
    for sent in reversed(sim.inbox):
        if (sent.channel, sent.to, sent.type) != (CHANNELS[field], to, kind) or sent.used:
            continue
        if sent.sent_at > oldest and secrets.compare_digest(sent.code, code):
            return sent
    raise sim.error("SMS.1003", "verification code error")


def _verify_code_bind(sim: IdaasCore, req: RecordedRequest, route: str, register: bool) -> Response:
    body = sim.check_common(req)
    sim.check_route(route, register=register)
    token = sim.take_state(req)
    field, to = _destination(sim, body)
    (code,) = sim.require(body, "verify_code")
    kind = (REGISTER_TYPES if register else BIND_TYPES)[field]
    with sim.lock:
        sent = find_sent_code(sim, field, to, kind, code)
        user = _existing(sim, field, to) if not register else _find(sim, field, to)
        if user is None:
            user = _new_user(sim, field, to)
        answer = sim.complete_bind(token, user.user_name)
        sent.used = True
    return answer


def social_bind(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/social/bind {"mobile"|"email", "verify_code"}: bind an existing account."""
    return _verify_code_bind(sim, req, "bind", register=False)


def register_bind(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /api/v2/sdk/social/register-bind: bind, creating the account if needed."""
    return _verify_code_bind(sim, req, "register_bind", register=True)


BIND_ROUTES: RouteTable = [
    ("POST", "/api/v2/sdk/login/wechat-mini-program-mobile", login_mobile),
    ("POST", "/api/v2/sdk/social/wechat-mobile-bind", wechat_mobile_bind),
    ("POST", "/api/v2/sdk/social/bind", social_bind),
    ("POST", "/api/v2/sdk/social/register-bind", register_bind),
    ("POST", "/api/v2/sdk/social/wechat-mobile-register-bind", wechat_mobile_register_bind),
]
