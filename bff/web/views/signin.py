"""Signing in: a handle for a wx.login code, then login with WeChat or with the phone number.

Each view: the declared body (loaded by the registry) → the device headers → a flow.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from bff import flows
from bff.errors import RATE_LIMITED, SESSION_STORE_UNAVAILABLE, UNKNOWN_APP, WECHAT_CODE_INVALID
from bff.models import Caller, Outcome, WechatSession
from bff.services import Services
from bff.web.identity import current_device, optional_device
from bff.web.operations import BODY, SIGN_IN, UPSTREAM, Api, require_caller
from bff.web.schemas import (
    LoginRequest,
    LoginResponse,
    PhoneCodeRequest,
    WechatSessionRequest,
    WechatSessionResponse,
)

bp = Blueprint("signin", __name__, url_prefix="/api/v1")
api = Api(bp, "sign-in")


@api.operation(
    "POST",
    "/wechat/session",
    "Exchange a wx.login code for an opaque handle (IDENTITY_SOURCE=wechat)",
    request=WechatSessionRequest,
    response=WechatSessionResponse,
    status=201,
    auth=False,
    errors=(
        *BODY,
        *UPSTREAM,
        WECHAT_CODE_INVALID,
        RATE_LIMITED,
        SESSION_STORE_UNAVAILABLE,
        UNKNOWN_APP,
    ),
    identity_sources=("wechat",),  # 404 for an app in gateway mode
    names_app=True,  # the body's appid (none: the default app); the handle carries it after
)
def create_wechat_session(svc: Services, caller: Caller | None, body: Any) -> WechatSession:
    # The device headers are optional here (the mini program has not signed in yet); what
    # comes names the device in the user's list of sessions.
    return flows.open_wechat_session(svc, body["wx_code"], optional_device())


@api.operation(
    "POST",
    "/login",
    "Log in with a fresh wx.login code",
    request=LoginRequest,
    response=LoginResponse,
    errors=SIGN_IN,
)
def login(svc: Services, caller: Caller | None, body: Any) -> Outcome:
    device = current_device()
    return flows.login(svc, require_caller(caller), body["code"], device)


@api.operation(
    "POST",
    "/login/phone",
    "Log in with the WeChat phone-number button's code",
    request=PhoneCodeRequest,
    response=LoginResponse,
    errors=SIGN_IN,
)
def login_phone(svc: Services, caller: Caller | None, body: Any) -> Outcome:
    device = current_device()
    return flows.login_with_phone(svc, require_caller(caller), body["phone_code"], device)
