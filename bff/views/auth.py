"""The mini-program API (SPEC §2): wechat/session, login, the bind routes, session.

Each view is: checked input (the Api declaration) → rate limit → a flow → a trimmed answer.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from bff import flows
from bff.api import AUTH_ERRORS, Api
from bff.clients.idaas import BIND_PASSWORD_PATH, LOGIN_PATH
from bff.errors import NotFound
from bff.identity import Caller, client_ip, current_device
from bff.schemas import (
    BindUsernamePasswordRequest,
    EmptyRequest,
    LoginRequest,
    LoginResponse,
    RefreshResponse,
    SessionStatusResponse,
    WechatSessionRequest,
    WechatSessionResponse,
)
from bff.services import services

bp = Blueprint("auth", __name__, url_prefix="/api/v1")
api = Api(bp, "auth")

# A bind route is a schema and a row here: the flow behind every row is flows.bind().
BIND_ROUTES = [
    (
        "/bind/username-password",
        BindUsernamePasswordRequest,
        flows.BindRoute(
            "username-password",
            BIND_PASSWORD_PATH,
            lambda b: {"user_name": b["user_name"], "password": b["password"]},
        ),
        "Bind the WeChat account to an IDaaS account with its username and password",
    ),
]


def limit(route: str, caller: Caller | None, limits_name: str) -> None:
    """Count this request per openid and per client IP; fails open when Redis is down."""
    svc = services()
    scopes = [("ip", client_ip() or "unknown")]
    if caller is not None:
        scopes.append(("openid", caller.openid))
    svc.limiter.check(route, scopes, getattr(svc.settings, limits_name), fail_open=True)


def _caller(caller: Caller | None) -> Caller:
    assert caller is not None  # auth=True operations always have one  # noqa: S101
    return caller


@api.operation(
    "POST",
    "/wechat/session",
    "Exchange a wx.login code for an opaque handle (IDENTITY_SOURCE=wechat)",
    request=WechatSessionRequest,
    response=WechatSessionResponse,
    status=201,
    auth=False,
    errors=(400, 404, 413, 415, 429, 502, 503, 504),
)
def wechat_session(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
    svc = services()
    if svc.settings.identity_source != "wechat":
        raise NotFound()
    assert body is not None  # noqa: S101
    limit("wechat_session", None, "rate_limit_login")
    return flows.open_wechat_session(svc, body["wx_code"])


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
    return flows.login(services(), _caller(caller), LOGIN_PATH, body["code"], device)


def _bind_view(route: flows.BindRoute) -> Any:
    def view(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
        assert body is not None  # noqa: S101
        device = current_device()
        limit("bind", caller, "rate_limit_bind")
        return flows.bind(services(), _caller(caller), route, body, device)

    view.__name__ = "bind_" + route.name.replace("-", "_")
    return view


for _path, _schema, _route, _summary in BIND_ROUTES:
    api.operation(
        "POST", _path, _summary, request=_schema, response=LoginResponse, errors=(*AUTH_ERRORS, 409)
    )(_bind_view(_route))


@api.operation(
    "POST",
    "/session/refresh",
    "A fresh id_token from the server-held session",
    request=EmptyRequest,
    response=RefreshResponse,
)
def refresh(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
    return flows.refresh(services(), _caller(caller), current_device())


@api.operation(
    "GET",
    "/session",
    "Whether the caller has an active session",
    response=SessionStatusResponse,
    errors=(401, 503),
)
def session_status(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
    return flows.session_status(services(), _caller(caller))


@api.operation(
    "DELETE",
    "/session",
    "Log out: forget the session, the pending bind and the handle",
    status=204,
    errors=(401, 503),
)
def logout(caller: Caller | None, body: dict[str, Any] | None) -> None:
    flows.logout(services(), _caller(caller))
