"""IDaaS simulator: `/_sim/` control endpoints for scripting from a shell."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ._idaas_core import IdaasCore, RouteTable
from ._idaas_models import NEXT_STEPS, ROUTE_NAMES
from ._server import RecordedRequest, Response, control_body, control_error, json_response
from ._tokens import ID_TOKEN_MODES


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _is_flows(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _is_routes(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v in ROUTE_NAMES for v in value)


def _is_mode(value: Any) -> bool:
    return isinstance(value, str) and value in ID_TOKEN_MODES


def _is_attempts(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


def _is_step(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value in NEXT_STEPS)


def _is_length(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_regex(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        re.compile(value)
    except re.error:
        return False
    return True


def _is_policy(value: Any) -> bool:
    """{"minLength": int, "maxLength": int, "regEx": str} (a Python-compatible pattern)."""
    if not isinstance(value, dict) or set(value) != {"minLength", "maxLength", "regEx"}:
        return False
    lengths = _is_length(value["minLength"]) and _is_length(value["maxLength"])
    return lengths and _is_regex(value["regEx"])


CONFIG_KNOBS: dict[str, Callable[[Any], bool]] = {
    "tenant_status": _is_str,
    "flows": _is_flows,
    "pad_status": _is_bool,
    "login_status_override": _is_opt_str,
    "code_prefix": _is_str,
    "state_token_ttl_s": _is_seconds,
    "session_expire_s": _is_seconds,
    "id_token_ttl_s": _is_seconds,
    "rotate_session_token": _is_bool,
    "session_token_header": _is_str,
    "id_token_mode": _is_mode,
    "publish_extra_key": _is_bool,
    "allowed_routes": _is_routes,
    "max_password_attempts": _is_attempts,
    "phone_code_ttl_s": _is_seconds,
    "verify_code_ttl_s": _is_seconds,
    "captcha_token_ttl_s": _is_seconds,
    "next_step": _is_step,
    "password_policy": _is_policy,
    "mfa_mobile_in_clear": _is_bool,
}


def current_config(sim: IdaasCore) -> dict[str, Any]:
    """Every knob's current value (JSON-ready)."""
    config = {name: getattr(sim, name) for name in CONFIG_KNOBS}
    config["allowed_routes"] = sorted(sim.allowed_routes)
    return config


def put_config(sim: IdaasCore, req: RecordedRequest) -> Response:
    """PUT /_sim/config {knob: value, ...}: all-or-nothing; answers the whole config."""
    body = control_body(req)
    for name, value in body.items():
        check = CONFIG_KNOBS.get(name)
        if check is None:
            raise control_error(f"unknown knob {name!r}; one of {sorted(CONFIG_KNOBS)}")
        if not check(value):
            raise control_error(f"bad value for {name}")
    with sim.lock:
        for name, value in body.items():
            setattr(sim, name, set(value) if name == "allowed_routes" else value)
    return json_response(current_config(sim))


def get_config(sim: IdaasCore, req: RecordedRequest) -> Response:
    """GET /_sim/config."""
    return json_response(current_config(sim))


def post_user(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /_sim/users {"user_name", "password", "mobile"?, "email"?}."""
    body = control_body(req)
    fields = {name: body.get(name) for name in ("user_name", "password", "mobile", "email")}
    user_name, password = fields["user_name"], fields["password"]
    if not (isinstance(user_name, str) and user_name and isinstance(password, str) and password):
        raise control_error("user_name and password are required")
    if not all(_is_opt_str(fields[name]) for name in ("mobile", "email")):
        raise control_error("mobile and email must be strings")
    user = sim.add_user(user_name, password, fields["mobile"], fields["email"])
    return json_response({"user_name": user.user_name, "mobile": user.mobile, "email": user.email})


def post_phone_code(sim: IdaasCore, req: RecordedRequest) -> Response:
    """POST /_sim/phone-code {"mobile"?}: a phone-number code (default: first user's mobile)."""
    mobile = control_body(req).get("mobile")
    if mobile is None:
        with sim.lock:
            mobile = next((u.mobile for u in sim.users.values() if u.mobile), None)
    if not isinstance(mobile, str) or not mobile:
        raise control_error("mobile is required (no user has a mobile)")
    return json_response({"code": sim.issue_phone_code(mobile)})


def get_inbox(sim: IdaasCore, req: RecordedRequest) -> Response:
    """GET /_sim/inbox: every verification code sent."""
    with sim.lock:
        return json_response([asdict(sent) for sent in sim.inbox])


def get_captcha_answers(sim: IdaasCore, req: RecordedRequest) -> Response:
    """GET /_sim/captcha-answers: {captcha token: point_json} of unsolved puzzles."""
    with sim.lock:
        return json_response(dict(sim.captcha_answers))


CONTROL_ROUTES: RouteTable = [
    ("PUT", "/_sim/config", put_config),
    ("GET", "/_sim/config", get_config),
    ("POST", "/_sim/users", post_user),
    ("POST", "/_sim/phone-code", post_phone_code),
    ("GET", "/_sim/inbox", get_inbox),
    ("GET", "/_sim/captcha-answers", get_captcha_answers),
]
