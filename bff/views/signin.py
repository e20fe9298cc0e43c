"""SPEC §12 beyond the bind table: phone-number login, the slider captcha, verification codes.

The bind and register routes of §12 are rows of ``BIND_ROUTES`` in ``views/auth.py``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from bff import codes, flows
from bff.api import Api, require_caller
from bff.clients.idaas import LOGIN_PHONE_PATH
from bff.identity import Caller, current_device, optional_device
from bff.observability import note_outcome
from bff.schemas import (
    CaptchaResponse,
    LoginResponse,
    PhoneCodeRequest,
    VerificationCodesRequest,
)
from bff.services import services
from bff.views.auth import limit

bp = Blueprint("signin", __name__, url_prefix="/api/v1")
api = Api(bp, "signin")


@api.operation(
    "POST",
    "/login/phone",
    "Log in with the WeChat phone-number button's code",
    request=PhoneCodeRequest,
    response=LoginResponse,
)
def login_phone(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
    assert body is not None  # noqa: S101
    device = current_device()
    limit("login", caller, "rate_limit_login")  # one budget with POST /login
    return flows.login(
        services(), require_caller(caller), LOGIN_PHONE_PATH, body["phone_code"], device
    )


@api.operation(
    "GET",
    "/captcha",
    "A slider captcha for POST /verification-codes (null fields left out)",
    response=CaptchaResponse,
    errors=(400, 401, 429, 502, 503, 504),
    device_required=False,
)
def captcha(caller: Caller | None, body: dict[str, Any] | None) -> dict[str, Any]:
    # Needs only auth (SPEC §12): the device headers are forwarded when present and the IDaaS
    # judges them (a tenant that wants them answers its own 400 COMMON.1003, passed on).
    device = optional_device()
    limit("captcha", caller, "rate_limit_login")  # fail open, like login
    puzzle = services().idaas.captcha(device)
    note_outcome("CAPTCHA_ISSUED")
    return {k: v for k, v in puzzle.items() if v is not None}


@api.operation(
    "POST",
    "/verification-codes",
    "Verify the slider and send an SMS or e-mail code for the pending bind",
    request=VerificationCodesRequest,
    status=204,
)
def verification_codes(caller: Caller | None, body: dict[str, Any] | None) -> None:
    assert body is not None  # noqa: S101
    device = current_device()  # checked before anything is counted or sent
    codes.send_verification_code(services(), require_caller(caller), body, device)
