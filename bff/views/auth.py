"""The mini-program API (SPEC §2, §12): wechat/session, login, the bind routes, session.

Each view is: checked input (the Api declaration) → rate limit → a flow → a trimmed answer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from bff import flows
from bff.api import Api, require_caller
from bff.clients.idaas import (
    BIND_CODE_PATH,
    BIND_PASSWORD_PATH,
    BIND_WECHAT_PHONE_PATH,
    LOGIN_PATH,
    REGISTER_CODE_PATH,
    REGISTER_WECHAT_PHONE_PATH,
)
from bff.errors import NotFound
from bff.identity import Caller, client_ip, current_device
from bff.schemas import (
    BindUsernamePasswordRequest,
    EmptyRequest,
    LoginRequest,
    LoginResponse,
    PhoneCodeRequest,
    RefreshResponse,
    SessionStatusResponse,
    VerificationBindRequest,
    WechatSessionRequest,
    WechatSessionResponse,
)
from bff.services import services

bp = Blueprint("auth", __name__, url_prefix="/api/v1")
api = Api(bp, "auth")


def _password_body(body: dict[str, Any]) -> dict[str, Any]:
    return {"user_name": body["user_name"], "password": body["password"]}


def _phone_body(body: dict[str, Any]) -> dict[str, Any]:
    """The phone-number button's code; the IDaaS calls it ``wechat_code`` (IDAAS.md §3.6)."""
    return {"wechat_code": body["phone_code"]}


def _code_body(body: dict[str, Any]) -> dict[str, Any]:
    """``mobile`` or ``email`` (exactly one: the schema checks) and ``verify_code``, as typed."""
    return {k: body[k] for k in ("mobile", "email", "verify_code") if k in body}


# Every way to spend the pending state token (SPEC §2, §12) is a schema and a row here; the one
# flow behind every row is flows.bind(): same lock, same 409, same outcomes, same error mapping.
BIND_ROUTES = [
    (
        "/bind/username-password",
        BindUsernamePasswordRequest,
        flows.BindRoute("username-password", BIND_PASSWORD_PATH, _password_body),
        "Bind the WeChat account to an IDaaS account with its username and password",
    ),
    (
        "/bind/wechat-phone",
        PhoneCodeRequest,
        flows.BindRoute("wechat-phone", BIND_WECHAT_PHONE_PATH, _phone_body),
        "Bind the WeChat account to the IDaaS account of the WeChat phone number",
    ),
    (
        "/bind/verification-code",
        VerificationBindRequest,
        flows.BindRoute("verification-code", BIND_CODE_PATH, _code_body),
        "Bind the WeChat account to the IDaaS account of a code-verified mobile or e-mail",
    ),
    (
        "/register/wechat-phone",
        PhoneCodeRequest,
        flows.BindRoute("register-wechat-phone", REGISTER_WECHAT_PHONE_PATH, _phone_body),
        "Bind the WeChat account to the WeChat phone number's account, creating it if needed",
    ),
    (
        "/register/verification-code",
        VerificationBindRequest,
        flows.BindRoute("register-verification-code", REGISTER_CODE_PATH, _code_body),
        "Bind the WeChat account to a code-verified mobile or e-mail, creating the account if new",
    ),
]


def limit(route: str, caller: Caller | None, limits_name: str) -> None:
    """Count this request per openid and per client IP; fails open when Redis is down."""
    svc = services()
    scopes = [("ip", client_ip() or "unknown")]
    if caller is not None:
        scopes.append(("openid", caller.openid))
    svc.limiter.check(route, scopes, getattr(svc.settings, limits_name), fail_open=True)


def _wechat_mode_only() -> None:
    """``wechat/session`` exists in IDENTITY_SOURCE=wechat only: 404, whatever the body (§3)."""
    if services().settings.identity_source != "wechat":
        raise NotFound()


@api.operation(
    "POST",
    "/wechat/session",
    "Exchange a wx.login code for an opaque handle (IDENTITY_SOURCE=wechat)",
    request=WechatSessionRequest,
    response=WechatSessionResponse,
    status=201,
    auth=False,
    errors=(400, 404, 413, 415, 429, 502, 503, 504),
    guard=lambda: _wechat_mode_only(),
)
def wechat_session(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
    assert body is not None  # noqa: S101
    limit("wechat_session", None, "rate_limit_login")
    return flows.open_wechat_session(services(), body["wx_code"])


@api.operation(
    "POST",
    "/login",
    "Log in with a fresh wx.login code",
    request=LoginRequest,
    response=LoginResponse,
)
def login(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
    assert body is not None  # noqa: S101
    device = current_device()
    limit("login", caller, "rate_limit_login")
    return flows.login(services(), require_caller(caller), LOGIN_PATH, body["code"], device)


def _bind_view(path: str, route: flows.BindRoute) -> Any:
    def view(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
        assert body is not None  # noqa: S101
        device = current_device()
        limit("bind", caller, "rate_limit_bind")
        return flows.bind(services(), require_caller(caller), route, body, device)

    view.__name__ = path.strip("/").replace("/", "_").replace("-", "_")  # bind_wechat_phone
    return view


for _path, _schema, _route, _summary in BIND_ROUTES:
    api.operation("POST", _path, _summary, request=_schema, response=LoginResponse)(
        _bind_view(_path, _route)
    )


@api.operation(
    "POST",
    "/session/refresh",
    "A fresh id_token from the server-held session",
    request=EmptyRequest,
    response=RefreshResponse,
)
def refresh(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
    return flows.refresh(services(), require_caller(caller), current_device())


@api.operation(
    "GET",
    "/session",
    "Whether the caller has an active session",
    response=SessionStatusResponse,
    errors=(401, 503),
)
def session_status(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
    return flows.session_status(services(), require_caller(caller))


@api.operation(
    "DELETE",
    "/session",
    "Log out: forget the session, the pending bind and the handle",
    status=204,
    errors=(401, 409, 503),
)
def logout(caller: Caller | None, body: dict[str, Any] | None) -> None:
    flows.logout(services(), require_caller(caller))
