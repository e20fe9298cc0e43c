"""Finishing a first sign-in: the bind and register routes, the slider and verification codes.

Every bind and register route spends the pending state token through one flow
(``flows.bind``): a view names the IDaaS route, the IDaaS client knows its path and body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Blueprint
from marshmallow import Schema

from bff import flows
from bff.credentials import BindCredential, UsernamePassword, VerifiedContact, WechatPhone
from bff.errors import NO_PENDING_BIND, NOT_FOUND, RATE_LIMITED, VALIDATION
from bff.models import Caller, Captcha, Outcome
from bff.services import Services
from bff.web.identity import current_device, optional_device
from bff.web.operations import AUTH, BODY, IDAAS, SIGN_IN, Api, View, require_caller
from bff.web.schemas import (
    BindUsernamePasswordRequest,
    CaptchaResponse,
    LoginResponse,
    PhoneCodeRequest,
    VerificationBindRequest,
    VerificationCodesRequest,
)

bp = Blueprint("bind", __name__, url_prefix="/api/v1")
api = Api(bp, "bind")


@dataclass(frozen=True)
class BindRoute:
    """Our path, its body, the credential the body becomes, the summary."""

    path: str
    request: type[Schema]
    credential: Callable[..., BindCredential]
    summary: str


BIND_ROUTES = (
    BindRoute(
        "/bind/username-password",
        BindUsernamePasswordRequest,
        UsernamePassword,
        "Bind the WeChat account to an IDaaS account with its username and password",
    ),
    BindRoute(
        "/bind/wechat-phone",
        PhoneCodeRequest,
        WechatPhone,
        "Bind the WeChat account to the IDaaS account of the WeChat phone number",
    ),
    BindRoute(
        "/bind/verification-code",
        VerificationBindRequest,
        VerifiedContact,
        "Bind the WeChat account to the IDaaS account of a code-verified mobile or e-mail",
    ),
    BindRoute(
        "/register/wechat-phone",
        PhoneCodeRequest,
        partial(WechatPhone, create_account=True),
        "Bind the WeChat account to the WeChat phone number's account, creating it if needed",
    ),
    BindRoute(
        "/register/verification-code",
        VerificationBindRequest,
        partial(VerifiedContact, create_account=True),
        "Bind the WeChat account to a code-verified mobile or e-mail, creating the account if new",
    ),
)


def _bind_view(route: BindRoute) -> View:
    def view(svc: Services, caller: Caller | None, body: Any) -> Outcome:
        device = current_device()
        return flows.bind(svc, require_caller(caller), route.credential(**body), device)

    view.__name__ = route.path.strip("/").replace("/", "_").replace("-", "_")  # bind_wechat_phone
    return view


for _route in BIND_ROUTES:
    api.operation(
        "POST",
        _route.path,
        _route.summary,
        request=_route.request,
        response=LoginResponse,
        errors=(*SIGN_IN, NO_PENDING_BIND),
    )(_bind_view(_route))


@api.operation(
    "GET",
    "/captcha",
    "A slider captcha for POST /verification-codes (null fields left out)",
    response=CaptchaResponse,
    errors=(*AUTH, VALIDATION, *IDAAS, RATE_LIMITED, NOT_FOUND),
    device_required=False,
)
def captcha(svc: Services, caller: Caller | None, body: Any) -> Captcha:
    # Needs only auth: the device headers are forwarded when present and the IDaaS judges them
    # (a tenant that wants them answers its own 400 COMMON.1003, passed on).
    return flows.captcha(svc, require_caller(caller), optional_device())


@api.operation(
    "POST",
    "/verification-codes",
    "Verify the slider and send an SMS or e-mail code for the pending bind",
    request=VerificationCodesRequest,
    status=204,
    errors=(*AUTH, *BODY, *IDAAS, RATE_LIMITED, NO_PENDING_BIND, NOT_FOUND),
)
def send_verification_code(svc: Services, caller: Caller | None, body: Any) -> None:
    device = current_device()  # checked before anything is counted or sent
    flows.send_verification_code(svc, require_caller(caller), body, device)
